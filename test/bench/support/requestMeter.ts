import type { AwsClients } from '../../../shared/aws/clients.js';

export type AwsService = 'S3' | 'DynamoDB' | 'SQS';

/** Requests of one kind (service and operation) with their summed latency. */
export interface OperationCount {
  service: AwsService;
  operation: string;
  requests: number;
  seconds: number;
}

/** What a stretch of work cost in AWS requests, and how long moto kept us waiting. */
export interface MeterReading {
  operations: OperationCount[];
  /** Wall time with at least one request outstanding (overlaps counted once; long polls left out). */
  busySeconds: number;
  /** Latency summed over requests (overlaps counted as many times as they overlap). */
  requestSeconds: number;
  /** DynamoDB read units: consistent reads, 1 per 4 KB of item (Scan/Query: of all items read). */
  readUnits: number;
  /** DynamoDB write units: 1 per 1 KB of item written, estimated from the item sizes read. */
  writeUnits: number;
  /** Replicate invocations (ReceiveMessage answer → DeleteMessageBatch) and their summed duration. */
  batches: { count: number; seconds: number; messages: number };
}

const SERVICES: Record<string, AwsService> = { S3Client: 'S3', DynamoDBClient: 'DynamoDB', SQSClient: 'SQS' };
const DYNAMO_WRITES = new Set(['PutItem', 'UpdateItem', 'DeleteItem']);
/** A ReceiveMessage that found nothing (a long poll on an empty queue), counted apart. */
export const EMPTY_RECEIVE = 'ReceiveMessage (empty)';

type Attributes = Record<string, unknown>;

/** Keys of a BatchGetItem request (or its unprocessed remainder), over all tables. */
function keysIn(requestItems: unknown): number {
  return Object.values((requestItems ?? {}) as Record<string, { Keys?: unknown[] }>).reduce(
    (sum, table) => sum + (table.Keys?.length ?? 0),
    0,
  );
}

/** DynamoDB's item size: attribute names plus values, roughly as it bills them. */
function itemBytes(item: Attributes): number {
  let bytes = 0;
  for (const [name, value] of Object.entries(item)) bytes += name.length + JSON.stringify(value).length;
  return bytes;
}

/**
 * Counts and times every AWS request of the clients it is attached to, by an SDK middleware on
 * the finalize step (after retries are decided, so each HTTP attempt counts).
 */
export class RequestMeter {
  private counts = new Map<string, OperationCount>();
  private outstanding = 0;
  private busySince = 0;
  private busyMs = 0;
  private requestMs = 0;
  private readUnitsTotal = 0;
  private writes = 0;
  private itemBytesSeen = { bytes: 0, items: 0 };
  private received = new Map<string, number>();
  private batchCount = 0;
  private batchMs = 0;
  private batchMessages = 0;
  private readonly attached = new WeakSet<object>();

  attach(clients: Pick<AwsClients, 's3' | 'dynamo' | 'sqs'>): void {
    for (const client of [clients.s3, clients.dynamo, clients.sqs]) {
      if (this.attached.has(client)) continue;
      this.attached.add(client);
      // One middleware shape for the three clients; their stacks differ only in input/output types.
      (client.middlewareStack as { add: (m: unknown, o: unknown) => void }).add(
        (next: (args: { input: Attributes }) => Promise<{ output: Attributes }>, context: Attributes) =>
          async (args: { input: Attributes }) =>
            this.measure(next, args, context),
        { step: 'finalizeRequest', priority: 'low', name: 'benchRequestMeter' },
      );
    }
  }

  isAttached(clients: Pick<AwsClients, 's3' | 'dynamo' | 'sqs'>): boolean {
    return [clients.s3, clients.dynamo, clients.sqs].every((client) => this.attached.has(client));
  }

  reset(): void {
    this.counts.clear();
    this.busyMs = 0;
    this.busySince = performance.now();
    this.requestMs = 0;
    this.readUnitsTotal = 0;
    this.writes = 0;
    this.received.clear();
    this.batchCount = 0;
    this.batchMs = 0;
    this.batchMessages = 0;
  }

  read(): MeterReading {
    const busyMs = this.busyMs + (this.outstanding > 0 ? performance.now() - this.busySince : 0);
    const averageItem =
      this.itemBytesSeen.items > 0 ? this.itemBytesSeen.bytes / this.itemBytesSeen.items : 0;
    return {
      operations: [...this.counts.values()]
        .map((c) => ({ ...c }))
        .sort((a, b) => a.service.localeCompare(b.service) || b.requests - a.requests),
      busySeconds: busyMs / 1000,
      requestSeconds: this.requestMs / 1000,
      readUnits: this.readUnitsTotal,
      writeUnits: this.writes * Math.max(1, Math.ceil(averageItem / 1024)),
      batches: { count: this.batchCount, seconds: this.batchMs / 1000, messages: this.batchMessages },
    };
  }

  private async measure(
    next: (args: { input: Attributes }) => Promise<{ output: Attributes }>,
    args: { input: Attributes },
    context: Attributes,
  ): Promise<{ output: Attributes }> {
    const service = SERVICES[String(context.clientName)] ?? 'S3';
    const operation = String(context.commandName).replace(/Command$/u, '');
    const started = performance.now();
    // Long polls wait on an empty queue, not on moto; Lambda's event source does them outside the function.
    const busy = operation !== 'ReceiveMessage';
    if (busy && this.outstanding++ === 0) this.busySince = started;
    if (operation === 'DeleteMessageBatch') this.endBatch(args.input, started);
    let label = operation;
    try {
      const result = await next(args);
      if (service === 'DynamoDB') this.countUnits(operation, args.input, result.output);
      if (operation === 'ReceiveMessage' && !this.startBatch(result.output)) label = EMPTY_RECEIVE;
      return result;
    } finally {
      const ended = performance.now();
      if (busy && --this.outstanding === 0) this.busyMs += ended - this.busySince;
      this.requestMs += ended - started;
      const key = `${service}:${label}`;
      const count = this.counts.get(key) ?? { service, operation: label, requests: 0, seconds: 0 };
      count.requests += 1;
      count.seconds += (ended - started) / 1000;
      this.counts.set(key, count);
    }
  }

  private countUnits(operation: string, input: Attributes, output: Attributes): void {
    if (DYNAMO_WRITES.has(operation)) {
      this.writes += 1;
      return;
    }
    const items: Attributes[] = [];
    if (operation === 'GetItem' && output.Item) items.push(output.Item as Attributes);
    if (operation === 'BatchGetItem') {
      for (const tableItems of Object.values((output.Responses ?? {}) as Record<string, Attributes[]>))
        items.push(...tableItems);
      // A key that was looked up but not found still costs a read unit.
      this.readUnitsTotal += Math.max(
        0,
        keysIn(input.RequestItems) - keysIn(output.UnprocessedKeys) - items.length,
      );
    }
    if (operation === 'Query' || operation === 'Scan') {
      const all = (output.Items ?? []) as Attributes[];
      const bytes = all.reduce((sum, item) => sum + itemBytes(item), 0);
      this.readUnitsTotal += Math.max(1, Math.ceil(bytes / 4096));
      this.noteItems(all);
      return;
    }
    // Point reads: one unit per 4 KB of each item, and one for a key that was not there.
    this.readUnitsTotal += items.reduce((sum, item) => sum + Math.ceil(itemBytes(item) / 4096), 0);
    if (operation === 'GetItem' && !output.Item) this.readUnitsTotal += 1;
    this.noteItems(items);
  }

  private noteItems(items: Attributes[]): void {
    for (const item of items) {
      this.itemBytesSeen.bytes += itemBytes(item);
      this.itemBytesSeen.items += 1;
    }
  }

  /** Notes when each received message arrived; false for an empty receive. */
  private startBatch(output: Attributes): boolean {
    const at = performance.now();
    const messages = (output.Messages ?? []) as Array<{ ReceiptHandle?: string }>;
    for (const message of messages) {
      if (message.ReceiptHandle) this.received.set(message.ReceiptHandle, at);
    }
    return messages.length > 0;
  }

  private endBatch(input: Attributes, at: number): void {
    const entries = (input.Entries ?? []) as Array<{ ReceiptHandle?: string }>;
    const receivedAt = this.received.get(entries[0]?.ReceiptHandle ?? '');
    if (receivedAt === undefined) return;
    for (const entry of entries) this.received.delete(entry.ReceiptHandle ?? '');
    this.batchCount += 1;
    this.batchMessages += entries.length;
    this.batchMs += at - receivedAt;
  }
}

/** Requests of one service, or of the named operations, in a reading. */
export function requestsOf(
  reading: MeterReading,
  service: AwsService,
  operations?: readonly string[],
): number {
  return reading.operations
    .filter((op) => op.service === service && (!operations || operations.includes(op.operation)))
    .reduce((sum, op) => sum + op.requests, 0);
}

import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';

const READS = new Set(['GetItemCommand', 'BatchGetItemCommand', 'QueryCommand', 'ScanCommand']);
const WRITES = new Set([
  'PutItemCommand',
  'UpdateItemCommand',
  'DeleteItemCommand',
  'BatchWriteItemCommand',
  'TransactWriteItemsCommand',
]);

/** What a DynamoDB client read and wrote, as DynamoDB bills it (ReturnConsumedCapacity) and in items. */
export interface DynamoUsage {
  /** Read capacity units DynamoDB reported consumed (on demand: read request units). */
  readUnits: number;
  /**
   * Read units as DynamoDB bills them, from the items' sizes: 4 KB per unit, half for eventually
   * consistent reads (moto charges a whole unit either way), Query and Scan rounded per call.
   */
  billedReadUnits: number;
  writeUnits: number;
  /** Items read (scanned items for Query and Scan, found items for Get and BatchGet). */
  itemsRead: number;
  /** Of those, asset states (`ASSET#…` items, index entries included). */
  stateItemsRead: number;
  itemsWritten: number;
  /** Calls per command name. */
  calls: Record<string, number>;
}

export interface DynamoMeter {
  usage(): DynamoUsage;
  reset(): void;
}

type Json = Record<string, unknown>;

function capacityOf(consumed: unknown): number {
  const entries = Array.isArray(consumed) ? consumed : consumed ? [consumed] : [];
  return entries.reduce((sum: number, entry) => sum + Number((entry as Json).CapacityUnits ?? 0), 0);
}

function isStateItem(item: unknown): boolean {
  const pk = ((item as Json | undefined)?.pk as Json | undefined)?.S;
  return typeof pk === 'string' && pk.startsWith('ASSET#');
}

function itemsOf(command: string, output: Json): unknown[] {
  if (command === 'GetItemCommand') return output.Item ? [output.Item] : [];
  if (command === 'BatchGetItemCommand') {
    return Object.values((output.Responses ?? {}) as Record<string, unknown[]>).flat();
  }
  return (output.Items ?? []) as unknown[];
}

/** An item's size as DynamoDB counts it, near enough: names plus values. */
function itemBytes(item: unknown): number {
  let bytes = 0;
  for (const [name, value] of Object.entries((item ?? {}) as Json))
    bytes += name.length + JSON.stringify(value).length;
  return bytes;
}

function consistentOf(command: string, input: Json): boolean {
  if (command === 'BatchGetItemCommand') {
    const requests = Object.values((input.RequestItems ?? {}) as Record<string, Json>);
    return requests.some((request) => request.ConsistentRead === true);
  }
  return input.ConsistentRead === true;
}

function billedUnits(command: string, input: Json, items: unknown[]): number {
  const factor = consistentOf(command, input) ? 1 : 0.5;
  if (command === 'QueryCommand' || command === 'ScanCommand') {
    const total = items.reduce((sum: number, item) => sum + itemBytes(item), 0);
    return Math.max(1, Math.ceil(total / 4096)) * factor;
  }
  return items.reduce((sum: number, item) => sum + Math.ceil(itemBytes(item) / 4096) * factor, 0);
}

/**
 * Counts every call of `client` (asking DynamoDB for its consumed capacity on each), so a test or
 * the bench can say what a run cost in read and write units and in items.
 */
export function meterDynamo(client: DynamoDBClient): DynamoMeter {
  let usage: DynamoUsage;
  const reset = () => {
    usage = {
      readUnits: 0,
      billedReadUnits: 0,
      writeUnits: 0,
      itemsRead: 0,
      stateItemsRead: 0,
      itemsWritten: 0,
      calls: {},
    };
  };
  reset();
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const command = String(context.commandName);
      const input = args.input as Json;
      if (READS.has(command) || WRITES.has(command)) input.ReturnConsumedCapacity ??= 'TOTAL';
      const result = await next(args);
      const output = result.output as unknown as Json;
      usage.calls[command] = (usage.calls[command] ?? 0) + 1;
      const units = capacityOf(output.ConsumedCapacity);
      if (READS.has(command)) {
        usage.readUnits += units;
        const items = itemsOf(command, output);
        const scanned = Number(output.ScannedCount ?? items.length);
        usage.itemsRead += scanned;
        usage.billedReadUnits += billedUnits(command, input, items);
        usage.stateItemsRead += items.filter(isStateItem).length;
      } else if (WRITES.has(command)) {
        usage.writeUnits += units;
        if (command === 'BatchWriteItemCommand') {
          const requests = Object.values((input.RequestItems ?? {}) as Record<string, unknown[]>).flat();
          const left = Object.values((output.UnprocessedItems ?? {}) as Record<string, unknown[]>).flat();
          usage.itemsWritten += requests.length - left.length;
        } else if (command === 'TransactWriteItemsCommand') {
          usage.itemsWritten += ((input.TransactItems ?? []) as unknown[]).length;
        } else {
          usage.itemsWritten += 1;
        }
      }
      return result;
    },
    { step: 'initialize', name: 'dynamoMeter', override: true },
  );
  return { usage: () => structuredClone(usage), reset };
}

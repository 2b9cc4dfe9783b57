import { backoff, errorName, isTransientAwsError, sleep } from './awsErrors.js';
import {
  ChangeMessageVisibilityBatchCommand,
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  type Message,
  type SendMessageBatchRequestEntry,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSEvent, SQSMessageAttributes, SQSRecord } from 'aws-lambda';
import { createHash } from 'node:crypto';
import {
  ConfigError,
  FatalError,
  PermanentAssetError,
  ReplicatorError,
  RetryableError,
  describeError,
  dispositionOf,
  redactSecrets,
} from '../errors.js';
import type { ReceivedWork, WorkItem, WorkQueue } from '../types.js';

/** SQS's limits: messages per batch, bytes per message and per batch, longest visibility. */
export const MAX_BATCH_ENTRIES = 10;
export const MAX_MESSAGE_BYTES = 256 * 1024;
export const MAX_VISIBILITY_SECONDS = 12 * 60 * 60;
/** Longest reason kept on a dead letter. */
export const MAX_REASON_CHARS = 1000;

export interface SqsWorkQueueOptions {
  sqs: SQSClient;
  queueUrl: string;
  /** Where deadLetter moves messages; usually the queue's redrive target. */
  dlqUrl?: string;
  /** Tries of a batch whose entries keep failing (default 5). */
  maxSendAttempts?: number;
  /** First backoff delay in ms between those tries (default 100; doubles, with jitter). */
  backoffMs?: number;
}

/** Reads a work item from a Lambda SQS event record; throws PermanentAssetError if it is not one. */
export function workFromSqsRecord(record: SQSRecord): ReceivedWork {
  return {
    item: parseWorkItem(record.body, record.messageId),
    receiptHandle: record.receiptHandle,
    receiveCount: Number(record.attributes.ApproximateReceiveCount) || 1,
    messageId: record.messageId,
  };
}

/**
 * Builds the SQSEvent Lambda would deliver for messages from ReceiveMessage (ask for
 * `MessageSystemAttributeNames: ['All']` and `MessageAttributeNames: ['All']` to fill it fully).
 */
export function sqsEventFromMessages(messages: Message[], queueArn: string): SQSEvent {
  const region = queueArn.split(':')[3] ?? '';
  const now = String(Date.now());
  return {
    Records: messages.map((message): SQSRecord => {
      const attributes = message.Attributes ?? {};
      const body = message.Body ?? '';
      return {
        messageId: message.MessageId ?? '',
        receiptHandle: message.ReceiptHandle ?? '',
        body,
        attributes: {
          ...attributes,
          ApproximateReceiveCount: attributes.ApproximateReceiveCount ?? '1',
          SentTimestamp: attributes.SentTimestamp ?? now,
          SenderId: attributes.SenderId ?? '',
          ApproximateFirstReceiveTimestamp: attributes.ApproximateFirstReceiveTimestamp ?? now,
        },
        messageAttributes: lambdaMessageAttributes(message.MessageAttributes),
        md5OfBody: message.MD5OfBody ?? createHash('md5').update(body, 'utf8').digest('hex'),
        ...(message.MD5OfMessageAttributes ? { md5OfMessageAttributes: message.MD5OfMessageAttributes } : {}),
        eventSource: 'aws:sqs',
        eventSourceARN: queueArn,
        awsRegion: region,
      };
    }),
  };
}

/** WorkQueue on an SQS queue and its dead-letter queue. */
export class SqsWorkQueue implements WorkQueue {
  readonly queueUrl: string;
  readonly dlqUrl?: string;
  private readonly sqs: SQSClient;
  private readonly maxSendAttempts: number;
  private readonly backoffMs: number;
  private readonly extensions: Array<{
    work: ReceivedWork;
    seconds: number;
    resolve: () => void;
    reject: (error: unknown) => void;
  }> = [];

  constructor(options: SqsWorkQueueOptions) {
    if (!options.queueUrl) throw new ConfigError('SqsWorkQueue needs a queue URL');
    this.sqs = options.sqs;
    this.queueUrl = options.queueUrl;
    this.dlqUrl = options.dlqUrl;
    this.maxSendAttempts = options.maxSendAttempts ?? 5;
    this.backoffMs = options.backoffMs ?? 100;
  }

  async sendBatch(items: WorkItem[]): Promise<void> {
    const bodies = items.map((item) => {
      const body = JSON.stringify(item);
      const size = Buffer.byteLength(body, 'utf8');
      if (size > MAX_MESSAGE_BYTES) {
        throw new PermanentAssetError(
          `work item for ${item.asset.publicId} is ${size} bytes as JSON; SQS takes at most ${MAX_MESSAGE_BYTES}`,
        );
      }
      return { body, size };
    });
    let batch: string[] = [];
    let batchBytes = 0;
    for (const { body, size } of bodies) {
      if (batch.length === MAX_BATCH_ENTRIES || batchBytes + size > MAX_MESSAGE_BYTES) {
        await this.sendOneBatch(batch);
        batch = [];
        batchBytes = 0;
      }
      batch.push(body);
      batchBytes += size;
    }
    if (batch.length > 0) await this.sendOneBatch(batch);
  }

  async receive(max: number, waitSeconds = 0): Promise<ReceivedWork[]> {
    const answer = await this.send(
      () =>
        this.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: this.queueUrl,
            MaxNumberOfMessages: Math.min(MAX_BATCH_ENTRIES, Math.max(1, Math.floor(max))),
            WaitTimeSeconds: Math.min(20, Math.max(0, Math.floor(waitSeconds))),
            MessageSystemAttributeNames: ['ApproximateReceiveCount'],
          }),
        ),
      this.queueUrl,
    );
    const received: ReceivedWork[] = [];
    for (const message of answer.Messages ?? []) {
      const receiptHandle = message.ReceiptHandle ?? '';
      const messageId = message.MessageId ?? '';
      const receiveCount = Number(message.Attributes?.ApproximateReceiveCount) || 1;
      let item: WorkItem;
      try {
        item = parseWorkItem(message.Body ?? '', messageId);
      } catch (error) {
        // Nothing can ever process it: move it aside now rather than after every retry (without
        // a DLQ URL it stays hidden until the queue's redrive policy moves it).
        if (this.dlqUrl) {
          await this.moveToDeadLetters(
            message.Body ?? '',
            receiptHandle,
            describeError(error),
            receiveCount,
            messageId,
          );
        }
        continue;
      }
      received.push({ item, receiptHandle, receiveCount, messageId });
    }
    return received;
  }

  async ack(work: ReceivedWork): Promise<void> {
    await this.send(
      () =>
        this.sqs.send(
          new DeleteMessageCommand({ QueueUrl: this.queueUrl, ReceiptHandle: work.receiptHandle }),
        ),
      this.queueUrl,
    );
  }

  async retryLater(work: ReceivedWork, delaySeconds: number): Promise<void> {
    await this.send(
      () =>
        this.sqs.send(
          new ChangeMessageVisibilityCommand({
            QueueUrl: this.queueUrl,
            ReceiptHandle: work.receiptHandle,
            VisibilityTimeout: Math.min(MAX_VISIBILITY_SECONDS, Math.max(0, Math.round(delaySeconds))),
          }),
        ),
      this.queueUrl,
    );
  }

  async extendVisibility(work: ReceivedWork, seconds: number): Promise<void> {
    // Extensions asked for in the same tick (a batch's heartbeat) go out as one batch request.
    return new Promise<void>((resolve, reject) => {
      this.extensions.push({ work, seconds, resolve, reject });
      if (this.extensions.length === 1) queueMicrotask(() => void this.sendExtensions());
    });
  }

  private async sendExtensions(): Promise<void> {
    const asked = this.extensions.splice(0);
    for (let i = 0; i < asked.length; i += MAX_BATCH_ENTRIES) {
      const chunk = asked.slice(i, i + MAX_BATCH_ENTRIES);
      try {
        const answer = await this.send(
          () =>
            this.sqs.send(
              new ChangeMessageVisibilityBatchCommand({
                QueueUrl: this.queueUrl,
                Entries: chunk.map((entry, j) => ({
                  Id: String(j),
                  ReceiptHandle: entry.work.receiptHandle,
                  VisibilityTimeout: Math.min(MAX_VISIBILITY_SECONDS, Math.max(0, Math.round(entry.seconds))),
                })),
              }),
            ),
          this.queueUrl,
        );
        const failed = new Map((answer.Failed ?? []).map((entry) => [entry.Id, entry]));
        chunk.forEach((entry, j) => {
          const failure = failed.get(String(j));
          if (!failure) entry.resolve();
          else
            entry.reject(
              new RetryableError(
                `SQS did not extend message ${entry.work.messageId} (${failure.Code ?? 'unknown'}): ${redactSecrets(failure.Message ?? '')}`,
              ),
            );
        });
      } catch (error) {
        for (const entry of chunk) entry.reject(error);
      }
    }
  }

  async deadLetter(work: ReceivedWork, reason: string): Promise<void> {
    await this.moveToDeadLetters(
      JSON.stringify(work.item),
      work.receiptHandle,
      reason,
      work.receiveCount,
      work.messageId,
    );
  }

  private async moveToDeadLetters(
    body: string,
    receiptHandle: string,
    reason: string,
    receiveCount: number,
    messageId: string,
  ): Promise<void> {
    const dlqUrl = this.dlqUrl;
    if (!dlqUrl) {
      throw new ConfigError(`SqsWorkQueue for ${this.queueUrl} has no dead-letter queue URL (set DLQ_URL)`);
    }
    const redacted = redactSecrets(reason);
    await this.send(
      () =>
        this.sqs.send(
          new SendMessageCommand({
            QueueUrl: dlqUrl,
            MessageBody: body,
            MessageAttributes: {
              reason: {
                DataType: 'String',
                StringValue:
                  (redacted.length > MAX_REASON_CHARS
                    ? `${redacted.slice(0, MAX_REASON_CHARS - 1)}…`
                    : redacted) || 'no reason given',
              },
              receiveCount: { DataType: 'Number', StringValue: String(receiveCount) },
              failedAt: { DataType: 'String', StringValue: new Date().toISOString() },
              ...(messageId ? { originalMessageId: { DataType: 'String', StringValue: messageId } } : {}),
            },
          }),
        ),
      dlqUrl,
    );
    // Only once the copy is safely in the DLQ: a crash in between leaves a duplicate, never a loss.
    await this.send(
      () =>
        this.sqs.send(new DeleteMessageCommand({ QueueUrl: this.queueUrl, ReceiptHandle: receiptHandle })),
      this.queueUrl,
    );
  }

  /** Sends ≤ 10 bodies, retrying the entries SQS reports as failed. */
  private async sendOneBatch(bodies: string[]): Promise<void> {
    let pending: SendMessageBatchRequestEntry[] = bodies.map((body, i) => ({
      Id: `m${i}`,
      MessageBody: body,
    }));
    for (let attempt = 1; pending.length > 0; attempt++) {
      if (attempt > 1) await sleep(backoff(this.backoffMs, attempt - 1));
      const answer = await this.send(
        () => this.sqs.send(new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: pending })),
        this.queueUrl,
      );
      const failed = answer.Failed ?? [];
      const rejected = failed.find((entry) => entry.SenderFault);
      if (rejected) {
        throw new PermanentAssetError(
          `SQS refused a work item (${rejected.Code ?? 'unknown'}): ${redactSecrets(rejected.Message ?? '')}`,
        );
      }
      const failedIds = new Set(failed.map((entry) => entry.Id));
      pending = pending.filter((entry) => failedIds.has(entry.Id));
      if (pending.length > 0 && attempt >= this.maxSendAttempts) {
        throw new RetryableError(
          `SQS kept failing ${pending.length} of the work items sent to ${this.queueUrl} (${failed[0]?.Code ?? 'unknown'}); try again`,
        );
      }
    }
  }

  private async send<T>(call: () => Promise<T>, queueUrl: string): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw classify(error, queueUrl);
    }
  }
}

function parseWorkItem(body: string, messageId: string): WorkItem {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new PermanentAssetError(`message ${messageId} is not JSON, so not a work item`);
  }
  const item = parsed as Partial<WorkItem> | null;
  const asset = item?.asset;
  if (
    typeof item?.runId !== 'string' ||
    typeof asset !== 'object' ||
    asset === null ||
    typeof asset.publicId !== 'string' ||
    typeof asset.resourceType !== 'string' ||
    typeof asset.deliveryType !== 'string' ||
    typeof asset.version !== 'number'
  ) {
    throw new PermanentAssetError(`message ${messageId} is not a work item (runId and asset expected)`);
  }
  return item as WorkItem;
}

function lambdaMessageAttributes(attributes: Message['MessageAttributes']): SQSMessageAttributes {
  const out: SQSMessageAttributes = {};
  for (const [name, value] of Object.entries(attributes ?? {})) {
    out[name] = {
      dataType: value.DataType ?? 'String',
      ...(value.StringValue !== undefined ? { stringValue: value.StringValue } : {}),
      ...(value.BinaryValue !== undefined
        ? { binaryValue: Buffer.from(value.BinaryValue).toString('base64') }
        : {}),
      stringListValues: value.StringListValues ?? [],
      binaryListValues: (value.BinaryListValues ?? []).map((b) => Buffer.from(b).toString('base64')),
    };
  }
  return out;
}

const MISSING_QUEUE = new Set(['QueueDoesNotExist', 'AWS.SimpleQueueService.NonExistentQueue']);
const SQS_TRANSIENT = [
  'RequestThrottled',
  'ThrottlingException',
  'OverLimit',
  'KmsThrottled',
  'ServiceUnavailable',
  'InternalError',
  'InternalFailure',
  'TimeoutError',
];

/** Turns an SQS failure into what to do about it; never echoes credentials. */
function classify(error: unknown, queueUrl: string): unknown {
  if (error instanceof ReplicatorError) return error;
  const name = errorName(error) ?? '';
  if (MISSING_QUEUE.has(name)) {
    return new FatalError(
      `SQS queue ${queueUrl} does not exist: check the queue URL setting, the AWS region and the account`,
      { cause: error },
    );
  }
  if (dispositionOf(error) === 'fatal') {
    return new FatalError(
      `SQS denied access to ${queueUrl}: check the AWS credentials and that the IAM policy allows this on the queue`,
      { cause: error },
    );
  }
  if (isTransientAwsError(error, SQS_TRANSIENT)) {
    return new RetryableError(
      `SQS queue ${queueUrl} is busy or unavailable, try again: ${describeError(error)}`,
      {
        cause: error,
      },
    );
  }
  return error;
}

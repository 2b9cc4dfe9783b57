import {
  GetEventSourceMappingCommand,
  UpdateEventSourceMappingCommand,
  type LambdaClient,
} from '@aws-sdk/client-lambda';
import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { RetryableError } from '../errors.js';
import type { WorkerSwitch } from '../types.js';
import { errorName, sleep } from './awsErrors.js';

export interface EventSourceSwitchOptions {
  lambda: LambdaClient;
  sqs: SQSClient;
  /** The replicate function's SQS event source mapping (its UUID). */
  mappingId: string;
  queueUrl: string;
  /** Waits between tries while the mapping is mid-change; injected by tests. */
  pause?: (ms: number) => Promise<void>;
}

/** States in which the mapping polls, or soon will without being asked again. */
const ON = new Set(['Enabled', 'Enabling', 'Creating']);
const OFF = new Set(['Disabled', 'Disabling']);
/** Lambda refuses an update while the mapping is changing state (ResourceInUseException): wait it out. */
const TRIES = 6;
const WAIT_MS = 2_000;

/**
 * The worker switch on AWS: enables and disables the replicate function's event source mapping.
 * A disabled mapping leaves messages in the queue (SQS keeps them for its retention period) and
 * the next enable picks them up; retries, the DLQ redrive and partial batch failures are the
 * mapping's and the queue's own settings, untouched.
 */
export class EventSourceSwitch implements WorkerSwitch {
  private readonly pause: (ms: number) => Promise<void>;

  constructor(private readonly options: EventSourceSwitchOptions) {
    this.pause = options.pause ?? sleep;
  }

  async start(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      if (ON.has(await this.state())) return;
      try {
        await this.update(true);
        return;
      } catch (error) {
        if (errorName(error) !== 'ResourceInUseException' || attempt >= TRIES) {
          throw new RetryableError(
            `could not enable the worker event source mapping ${this.options.mappingId}; the daily run enables it again`,
            { cause: error },
          );
        }
        await this.pause(WAIT_MS * attempt);
      }
    }
  }

  async stopIfIdle(): Promise<boolean> {
    if (await this.queued()) return false;
    const state = await this.state();
    if (!OFF.has(state)) {
      try {
        await this.update(false);
      } catch (error) {
        // Mid-change: the next settle check tries again.
        if (errorName(error) === 'ResourceInUseException') return false;
        throw error;
      }
    }
    // A message sent between the first look and the disable: its sender's start may have come first.
    if (await this.queued()) {
      await this.start();
      return false;
    }
    return true;
  }

  private async state(): Promise<string> {
    const mapping = await this.options.lambda.send(
      new GetEventSourceMappingCommand({ UUID: this.options.mappingId }),
    );
    return mapping.State ?? 'Enabled';
  }

  private async update(enabled: boolean): Promise<void> {
    await this.options.lambda.send(
      new UpdateEventSourceMappingCommand({ UUID: this.options.mappingId, Enabled: enabled }),
    );
  }

  /** Messages waiting, in flight or delayed (approximate counts, as SQS gives them). */
  private async queued(): Promise<boolean> {
    const attrs = await this.options.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: this.options.queueUrl,
        AttributeNames: [
          'ApproximateNumberOfMessages',
          'ApproximateNumberOfMessagesNotVisible',
          'ApproximateNumberOfMessagesDelayed',
        ],
      }),
    );
    const a = attrs.Attributes ?? {};
    return (
      Number(a.ApproximateNumberOfMessages ?? 0) +
        Number(a.ApproximateNumberOfMessagesNotVisible ?? 0) +
        Number(a.ApproximateNumberOfMessagesDelayed ?? 0) >
      0
    );
  }
}

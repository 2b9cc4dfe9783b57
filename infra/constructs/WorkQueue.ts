import { Duration } from 'aws-cdk-lib';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

/** SQS's rule for a Lambda event source: the visibility timeout is at least six times the function's timeout. */
export const VISIBILITY_TIMEOUT_FACTOR = 6;

export interface WorkQueueProps {
  /** Timeout of the function that consumes the queue. */
  consumerTimeout: Duration;
  /** Deliveries after which the worker itself dead-letters an item (with the reason). */
  maxReceives: number;
}

/**
 * The work queue between enumerate and replicate, and its dead-letter queue: both encrypted and
 * TLS-only. The redrive fires one delivery after the worker's own limit, so it only catches items
 * the worker could not dead-letter itself (a crash or timeout on the last try).
 */
export class WorkQueue extends Construct {
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;

  constructor(scope: Construct, id: string, props: WorkQueueProps) {
    super(scope, id);
    this.deadLetterQueue = new Queue(this, 'DeadLetterQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // The longest SQS allows: time to notice the alarm, fix the cause and redrive.
      retentionPeriod: Duration.days(14),
    });
    this.queue = new Queue(this, 'Queue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(props.consumerTimeout.toSeconds() * VISIBILITY_TIMEOUT_FACTOR),
      // A run's items outlive a paused listing (rate-limit waits) and a weekend of failures.
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: props.maxReceives + 1 },
    });
  }
}

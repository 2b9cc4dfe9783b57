/**
 * The replicate handler's invocations for the large-asset bench, in a process of its own (so its RSS
 * is the handler's alone): each invocation receives the asset's message, runs with `deadlineMs` left,
 * and deletes the message unless the handler reported it failed. Settings come from the environment.
 */
import type { Context, SQSBatchResponse } from 'aws-lambda';
import { DeleteMessageCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { replicateHandler } from '../../../functions/replicate.js';
import { sqsEventFromMessages } from '../../../shared/aws/SqsWorkQueue.js';

export interface LargeHandoverJob {
  kind: 'job';
  queueUrl: string;
  deadlineMs: number;
}

const job = await new Promise<LargeHandoverJob>((resolve) => process.once('message', resolve));
const sqs = new SQSClient({ region: 'us-east-1' });
let invocations = 0;
try {
  for (;;) {
    const received = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: job.queueUrl,
        MaxNumberOfMessages: 1,
        AttributeNames: ['All'],
        WaitTimeSeconds: 1,
      }),
    );
    const messages = received.Messages ?? [];
    if (messages.length === 0) break;
    invocations += 1;
    const invokedAt = Date.now();
    const context = {
      getRemainingTimeInMillis: () => job.deadlineMs - (Date.now() - invokedAt),
    } as Context;
    const answer = (await replicateHandler(
      sqsEventFromMessages(messages, 'arn:aws:sqs:us-east-1:123456789012:work'),
      context,
    )) as SQSBatchResponse;
    for (const message of messages) {
      if (!answer.batchItemFailures.some((failure) => failure.itemIdentifier === message.MessageId))
        await sqs.send(
          new DeleteMessageCommand({ QueueUrl: job.queueUrl, ReceiptHandle: message.ReceiptHandle }),
        );
    }
    process.send?.({
      kind: 'invocation',
      number: invocations,
      seconds: (Date.now() - invokedAt) / 1000,
      memory: process.memoryUsage(),
    });
  }
  process.send?.({ kind: 'invocation', done: true, invocations });
} catch (error) {
  process.send?.({ kind: 'error', message: error instanceof Error ? error.stack : String(error) });
}
sqs.destroy();
process.disconnect?.();

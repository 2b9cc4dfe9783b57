import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awsEngineFromEnv } from '../shared/aws/engineFromEnv.js';
import { sqsEventFromMessages } from '../shared/aws/SqsWorkQueue.js';
import { replicateRecords } from '../shared/engine/batch.js';
import { enumerate } from '../shared/engine/enumerate.js';
import { generateLibrary } from './double/index.js';
import { createPipelineBed, type PipelineBed } from './support/pipelineBed.js';

describe('a worker that reaches its deadline', { timeout: 120_000 }, () => {
  let bed: PipelineBed;

  beforeAll(async () => {
    bed = await createPipelineBed(
      { library: generateLibrary({ seed: 'deadline', counts: { image: { upload: 6 } } }) },
      { DELIVERY_TYPES: 'upload', RESOURCE_TYPES: 'image' },
    );
  });
  afterAll(async () => bed?.close());

  it('hands back the messages it never started at once, not after the 30-second visibility timeout', async () => {
    const engine = await awsEngineFromEnv();
    await enumerate({ ...engine, settings: engine.settings });
    const received = await bed.aws.clients.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: bed.aws.queueUrl,
        MaxNumberOfMessages: 10,
        AttributeNames: ['All'],
      }),
    );
    const messages = received.Messages ?? [];
    expect(messages).toHaveLength(6);

    // Already past its deadline: one lane starts one copy, which the deadline cuts; none other starts.
    const summary = await replicateRecords(
      { ...engine, maxReceives: 5, retryBaseSeconds: 0 },
      sqsEventFromMessages(messages, 'arn:aws:sqs:us-east-1:123456789012:work').Records,
      { deadline: Date.now(), concurrency: 1 },
    );

    expect(summary.batchItemFailures).toHaveLength(6);
    const again = await bed.aws.clients.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: bed.aws.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
    );
    expect(again.Messages?.length ?? 0).toBeGreaterThanOrEqual(5);
  });
});

import { GetBucketVersioningCommand, HeadBucketCommand } from '@aws-sdk/client-s3';
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { createAwsTestBed } from './support/awsTestBed.js';
import { startMoto } from './support/moto.js';

describe('local AWS test bed', () => {
  it('creates a versioned bucket, the state table and a work queue that redrives to its DLQ', async () => {
    const bed = await createAwsTestBed({ maxReceives: 2 });

    await expect(bed.clients.s3.send(new HeadBucketCommand({ Bucket: bed.bucket }))).resolves.toBeDefined();
    const versioning = await bed.clients.s3.send(new GetBucketVersioningCommand({ Bucket: bed.bucket }));
    const table = await bed.clients.dynamo.send(new DescribeTableCommand({ TableName: bed.table }));
    const queue = await bed.clients.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: bed.queueUrl, AttributeNames: ['RedrivePolicy'] }),
    );

    expect(versioning.Status).toBe('Enabled');
    expect(table.Table?.KeySchema?.map((k) => k.AttributeName)).toEqual(['pk', 'sk']);
    expect(JSON.parse(queue.Attributes?.RedrivePolicy ?? '{}')).toMatchObject({ maxReceiveCount: 3 });
  });

  it('gives two suites separate resources on the same server', async () => {
    const first = await createAwsTestBed();
    const second = await createAwsTestBed();

    expect(first.endpoint).toBe(second.endpoint);
    expect(first.bucket).not.toBe(second.bucket);
    expect(first.queueUrl).not.toBe(second.queueUrl);
  });

  it('names the pip command when moto_server is missing', async () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      await expect(startMoto()).rejects.toThrow("pip install 'moto[server]'");
    } finally {
      process.env.PATH = path;
    }
  });
});

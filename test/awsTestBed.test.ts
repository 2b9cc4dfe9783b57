import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

  it('says exactly what to install when neither moto_server nor Python 3 is on PATH', async () => {
    const saved = { PATH: process.env.PATH, MOTO_VENV: process.env.MOTO_VENV };
    const empty = mkdtempSync(join(tmpdir(), 'no-moto-'));
    process.env.PATH = '/nonexistent';
    process.env.MOTO_VENV = join(empty, 'moto-venv');
    try {
      await expect(startMoto()).rejects.toThrow(
        /no Python 3\.9\+ is on PATH[\s\S]*apt-get install python3 python3-venv[\s\S]*pip install "moto\[server\]==5\.2\.1"/u,
      );
      expect(existsSync(process.env.MOTO_VENV)).toBe(false);
    } finally {
      process.env.PATH = saved.PATH;
      if (saved.MOTO_VENV === undefined) delete process.env.MOTO_VENV;
      else process.env.MOTO_VENV = saved.MOTO_VENV;
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

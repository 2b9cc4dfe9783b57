import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAwsClients } from '../shared/aws/clients.js';
import { runPull, type PullSummary } from '../shared/pull/index.js';
import { useMotoEnvironment } from './support/awsTestBed.js';

const COUNT = 10_000;
const keyOf = (i: number): string =>
  `assets/image/upload/bulk/${String(i % 100).padStart(2, '0')}/photo-${i}.jpg`;
const bodyOf = (i: number): string => `photo number ${i}\n`;

async function pull(s3: S3Client, dest: string, bucket: string): Promise<PullSummary> {
  return runPull({ dest, bucket, concurrency: 16 }, { s3, out: { write: () => true }, mode: 'quiet' });
}

describe('a pull of 10,000 unchanged objects', () => {
  let s3: S3Client;
  let bucket: string;
  let dest: string;
  let firstRun: PullSummary;

  beforeAll(async () => {
    useMotoEnvironment();
    s3 = createAwsClients().s3;
    bucket = `bulk-${randomUUID().slice(0, 8)}`;
    dest = mkdtempSync(join(tmpdir(), 'pull-10k-'));
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    let next = 0;
    const putter = async (): Promise<void> => {
      while (next < COUNT) {
        const i = next++;
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: keyOf(i), Body: bodyOf(i) }));
      }
    };
    await Promise.all(Array.from({ length: 48 }, putter));
    // The drive already holds the files (as after an earlier pull whose index was lost): the
    // first pull proves them by MD5 against the listing's ETags and records them; no GETs.
    for (let d = 0; d < 100; d++)
      await mkdir(join(dest, `assets/image/upload/bulk/${String(d).padStart(2, '0')}`), { recursive: true });
    for (let i = 0; i < COUNT; i++) await writeFile(join(dest, keyOf(i)), bodyOf(i));
    firstRun = await pull(s3, dest, bucket);
    // Generous: under a full test run other suites share the one moto_server.
  }, 240_000);

  afterAll(async () => {
    await rm(dest, { recursive: true, force: true });
  });

  it('lists and skips them in seconds', async () => {
    const started = performance.now();
    const summary = await pull(s3, dest, bucket);
    const seconds = (performance.now() - started) / 1000;

    expect(firstRun).toMatchObject({ adopted: COUNT, downloaded: 0, failed: 0 });
    expect(summary).toMatchObject({ listed: COUNT, skipped: COUNT, downloaded: 0, adopted: 0, failed: 0 });
    expect(seconds).toBeLessThan(60);
    // Our own work (index lookups, one lstat per object); the rest is moto answering the listing.
    expect(seconds - summary.listSeconds).toBeLessThan(5);
    console.log(
      `10,000 unchanged objects: ${seconds.toFixed(2)} s in all, ${summary.listSeconds.toFixed(2)} s of it listing (moto), ` +
        `${(seconds - summary.listSeconds).toFixed(2)} s deciding`,
    );
  });
});

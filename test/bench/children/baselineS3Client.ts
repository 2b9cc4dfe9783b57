/**
 * The physical baseline into S3: fetches URLs with a plain keep-alive HTTP client, hashes each
 * body (MD5) while streaming it into one PutObject on moto, `concurrency` at a time. Nothing else:
 * no listing, state, lease or checks.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import { Transform } from 'node:stream';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { failChild, receiveJob } from '../support/child.js';
import type { BaselineS3Job, TransferDone } from './protocol.js';
import { cpuSince, peakRss } from './util.js';

const agent = new http.Agent({ keepAlive: true });

function fetchToS3(s3: S3Client, bucket: string, url: string, key: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent }, (response) => {
        if (response.statusCode !== 200) {
          response.resume();
          reject(new Error(`HTTP ${response.statusCode} for ${url}`));
          return;
        }
        const md5 = createHash('md5');
        let bytes = 0;
        const hashing = new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            md5.update(chunk);
            bytes += chunk.length;
            callback(null, chunk);
          },
        });
        response.once('error', (error) => hashing.destroy(error));
        response.pipe(hashing);
        s3.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: key,
            Body: hashing,
            ContentLength: Number(response.headers['content-length']),
          }),
        ).then(() => {
          md5.digest('hex');
          resolve(bytes);
        }, reject);
      })
      .on('error', reject);
  });
}

async function main(): Promise<void> {
  const job = await receiveJob<BaselineS3Job>();
  // No flexible checksum: a streamed body would go out aws-chunked with a CRC trailer, which moto
  // decodes slowly; the plain client sends the bytes as they are (the replicator checks MD5s itself).
  const s3 = new S3Client({
    endpoint: job.endpoint,
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const cpu = process.cpuUsage();
  const started = performance.now();
  let next = 0;
  let bytes = 0;
  await Promise.all(
    Array.from({ length: job.concurrency }, async () => {
      while (next < job.urls.length) {
        const index = next++;
        bytes += await fetchToS3(s3, job.bucket, job.urls[index] ?? '', `baseline/${index}`);
      }
    }),
  );
  const done: TransferDone = {
    kind: 'done',
    seconds: (performance.now() - started) / 1000,
    files: job.urls.length,
    bytes,
    cpu: cpuSince(cpu),
    peakRss: peakRss(),
    failed: 0,
  };
  process.send?.(done, () => process.exit(0));
}

main().catch(failChild);

/**
 * The physical baseline: fetches URLs with a plain keep-alive HTTP client, hashes each body (MD5)
 * and writes it to a file, `concurrency` at a time, then makes every file durable with one sync of
 * the file system at the end (the tool promises durable files too). Nothing else: no listing,
 * state or checks.
 */
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { failChild, receiveJob } from '../support/child.js';
import type { BaselineJob, TransferDone } from './protocol.js';
import { cpuSince, peakRss } from './util.js';

const agent = new http.Agent({ keepAlive: true });

function fetchToFile(url: string, path: string): Promise<number> {
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
        pipeline(response, hashing, createWriteStream(path)).then(() => {
          md5.digest('hex');
          resolve(bytes);
        }, reject);
      })
      .on('error', reject);
  });
}

/** One syncfs(2) of the file system holding `dir` (coreutils `sync -f`); a plain `sync` where -f is missing. */
async function syncFileSystem(dir: string): Promise<void> {
  const run = promisify(execFile);
  await run('sync', ['-f', dir]).catch(() => run('sync', []));
}

async function main(): Promise<void> {
  const job = await receiveJob<BaselineJob>();
  await mkdir(job.dest, { recursive: true });
  const cpu = process.cpuUsage();
  const started = performance.now();
  let next = 0;
  let bytes = 0;
  await Promise.all(
    Array.from({ length: job.concurrency }, async () => {
      while (next < job.urls.length) {
        const index = next++;
        const fetched = await fetchToFile(job.urls[index] ?? '', join(job.dest, String(index)));
        bytes += fetched;
      }
    }),
  );
  await syncFileSystem(job.dest);
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

import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAwsClients } from '../shared/aws/clients.js';
import { pullMain } from '../shared/cli/pull.js';
import { META } from '../shared/constants.js';
import { resolveBucket } from '../shared/pull/index.js';
import { useMotoEnvironment } from './support/awsTestBed.js';

const md5 = (body: Buffer): string => createHash('md5').update(body).digest('hex');

/** The moto environment without any bucket or stack setting. */
function noBucketEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.BACKUP_BUCKET;
  delete env.STACK_NAME;
  return env;
}

function terminal(isTTY: boolean) {
  const out: string[] = [];
  const err: string[] = [];
  const stdout = {
    write: (s: string) => out.push(s),
    isTTY,
    columns: 100,
  } as unknown as NodeJS.WritableStream;
  const stderr = { write: (s: string) => err.push(s) } as unknown as NodeJS.WritableStream;
  return { out, err, streams: { stdout, stderr } };
}

describe('npm run pull, the command', () => {
  let s3: S3Client;
  let bucket: string;
  const dirs: string[] = [];

  beforeAll(async () => {
    useMotoEnvironment();
    s3 = createAwsClients().s3;
    bucket = `cli-${randomUUID().slice(0, 8)}`;
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    for (const name of ['one', 'two']) {
      const body = randomBytes(2000);
      await s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: `assets/image/upload/${name}.jpg`,
          Body: body,
          Metadata: { [META.md5]: md5(body) },
        }),
      );
    }
  });

  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  function freshDest(): string {
    const dir = mkdtempSync(join(tmpdir(), 'pull-cli-'));
    dirs.push(dir);
    return dir;
  }

  it('prints help and exits 0', async () => {
    const io = terminal(false);

    const code = await pullMain(['--help'], io.streams);

    expect(code).toBe(0);
    expect(io.out.join('')).toContain('Usage: npm run pull -- --dest DIR [options]');
    expect(io.out.join('')).toContain('--restore-archived[=Bulk|Standard]');
  });

  it('exits 2 on a usage error, naming the valid options', async () => {
    const io = terminal(false);

    const codes = [
      await pullMain(['--dest', freshDest(), '--bucket', bucket, '--concurency', '8'], io.streams),
      await pullMain(['--bucket', bucket], io.streams),
      await pullMain(['--dest', freshDest(), '--bucket', bucket, '--concurrency', '0'], io.streams),
      await pullMain(['--dest', freshDest(), '--bucket', bucket, '--restore-archived=Fast'], io.streams),
    ];

    expect(codes).toEqual([2, 2, 2, 2]);
    expect(io.err[0]).toContain('Did you mean --concurrency?');
    expect(io.err[1]).toContain('--dest DIR is required');
  });

  it('says in one line what to do about a missing destination, bucket or bucket name', async () => {
    const file = join(freshDest(), 'a-file');
    await writeFile(file, 'x');
    const cases = [
      ['--dest', '/Volumes/NotPluggedIn/Backup', '--bucket', bucket],
      ['--dest', file, '--bucket', bucket],
      ['--dest', freshDest(), '--bucket', `missing-${randomUUID().slice(0, 8)}`],
      ['--dest', freshDest()],
    ];

    const results = [];
    for (const args of cases) {
      const io = terminal(false);
      const code = await pullMain(args, io.streams, noBucketEnv());
      results.push({ code, err: io.err.join('') });
    }

    // No bucket named at all is a usage error (exit 2, with the pointer to --help).
    expect(results.map((r) => r.code)).toEqual([1, 1, 1, 2]);
    for (const { err } of results.slice(0, 3)) expect(err.trim().split('\n')).toHaveLength(1);
    expect(results[3]?.err.trim().split('\n')).toEqual([expect.any(String), 'Run with --help for usage.']);
    expect(results[0]?.err).toContain('does not exist: plug in the drive or create the folder');
    expect(results[1]?.err).toContain('is a file, not a folder');
    expect(results[2]?.err).toContain('does not exist (or is in another account)');
    expect(results[3]?.err).toContain('pass --bucket NAME, set BACKUP_BUCKET, or pass --stack NAME');
  });

  it('takes the bucket from BACKUP_BUCKET and ends with a JSON summary in --json mode', async () => {
    const io = terminal(false);
    const dest = freshDest();

    const code = await pullMain(['--dest', dest, '--json'], io.streams, {
      ...process.env,
      BACKUP_BUCKET: bucket,
    });

    const events = io.out
      .join('')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(code).toBe(0);
    expect(events.at(-1)).toMatchObject({ event: 'summary', downloaded: 2, failed: 0, bucket });
  });

  it('draws a progress line on a terminal and prints a summary people can read', async () => {
    const io = terminal(true);

    const code = await pullMain(['--dest', freshDest(), '--bucket', bucket], io.streams);

    const text = io.out.join('');
    expect(code).toBe(0);
    expect(text).toMatch(/s3:\/\/cli-[0-9a-f]+\/ → .*: 2 objects/u);
    expect(text).toContain('  downloaded: 2');
    expect(text).toContain('  unchanged: 0');
  });

  it('reads the bucket from a stack output when asked, and explains what is missing otherwise', async () => {
    const fromStack = await resolveBucket({ stack: 'Backup' }, {}, async (stack, output) =>
      stack === 'Backup' && output === 'BucketName' ? 'bucket-from-stack' : undefined,
    );
    const io = terminal(false);

    const code = await pullMain(['--dest', freshDest(), '--stack', 'Backup'], io.streams, noBucketEnv());

    expect(fromStack).toBe('bucket-from-stack');
    expect(code).toBe(1);
    expect(io.err.join('')).toMatch(/@aws-sdk\/client-cloudformation|Backup/u);
  });
});

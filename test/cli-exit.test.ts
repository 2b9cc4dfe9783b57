import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateLibrary } from './double/index.js';
import { freshFolder, removeFolders } from './support/backupBed.js';
import { cleanEnv, runCommand, type FinishedCommand } from './support/cliChild.js';
import { createPipelineBed, type PipelineBed } from './support/pipelineBed.js';

/** The per-call deadline the commands get here; a real run uses 30–60 s. */
const DEADLINE_MS = 1_000;
/**
 * One try per Admin call: the retries of a failing Admin API (with their backoff) are tested in
 * backup-admin-faults; here the point is that nothing keeps a process alive after its last call.
 */
const ADMIN_TRIES = '1';
/** What the issue allows after the deadline. */
const GRACE_MS = 5_000;
/** A command still alive this long after its last request is stuck for good. */
const GIVE_UP_MS = 60_000;

/** A TCP server on 127.0.0.1 that accepts every connection and never answers a byte. */
interface SilentEndpoint {
  url: string;
  /** When the most recent connection arrived (a command's last request), by this process's clock. */
  lastConnectionAt: () => number | undefined;
  close: () => Promise<void>;
}

async function silentEndpoint(): Promise<SilentEndpoint> {
  const sockets = new Set<Socket>();
  let last: number | undefined;
  const server: Server = createServer((socket) => {
    last = performance.now();
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    lastConnectionAt: () => last,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function awsEnv(endpoint: SilentEndpoint): Record<string, string> {
  return {
    AWS_ENDPOINT_URL: endpoint.url,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_TIMEOUT_MS: String(DEADLINE_MS),
    AWS_MAX_ATTEMPTS: '1',
  };
}

/** Milliseconds from the command's last request (or its start mark) to its exit. */
function lingering(run: FinishedCommand, endpoint?: SilentEndpoint): number {
  const from = endpoint?.lastConnectionAt() ?? run.markedAt;
  expect(from, `the command never reached the endpoint: ${run.stderr}`).toBeDefined();
  return run.exitedAt - (from ?? 0);
}

describe('every command exits soon after a call that never gets an answer', { timeout: 180_000 }, () => {
  let endpoint: SilentEndpoint;

  beforeAll(async () => {
    endpoint = await silentEndpoint();
  });
  afterEach(async () => {
    await endpoint.close();
    endpoint = await silentEndpoint();
  });
  afterAll(async () => {
    await endpoint.close();
    await removeFolders();
  });

  it('npm run backup reports the silent Admin API and exits 1 within its deadline', async () => {
    const dest = freshFolder('hung-admin');

    const run = await runCommand(
      'shared/cli/backup.ts',
      ['--dest', dest],
      cleanEnv({
        CLOUDINARY_URL: `cloudinary://key:secret@cloud?upload_prefix=${endpoint.url}`,
        ADMIN_TIMEOUT_MS: String(DEADLINE_MS),
        ADMIN_RETRIES: ADMIN_TRIES,
      }),
    );

    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).toMatch(/did not answer within 1000 ms/u);
    expect(lingering(run, endpoint)).toBeLessThan(DEADLINE_MS + GRACE_MS);
  });

  it('npm run backup -- --dry-run exits 1 within its deadline too', async () => {
    const dest = freshFolder('hung-admin-dry');

    const run = await runCommand(
      'shared/cli/backup.ts',
      ['--dest', dest, '--dry-run'],
      cleanEnv({
        CLOUDINARY_URL: `cloudinary://key:secret@cloud?upload_prefix=${endpoint.url}`,
        ADMIN_TIMEOUT_MS: String(DEADLINE_MS),
        ADMIN_RETRIES: ADMIN_TRIES,
      }),
    );

    expect(run.code, run.stderr).toBe(1);
    expect(lingering(run, endpoint)).toBeLessThan(DEADLINE_MS + GRACE_MS);
  });

  it('npm run pull reports the silent S3 endpoint and exits 1 within its deadline', async () => {
    const dest = freshFolder('hung-s3');

    const run = await runCommand(
      'shared/cli/pull.ts',
      ['--dest', dest, '--bucket', 'backup'],
      cleanEnv(awsEnv(endpoint)),
    );

    expect(run.code, run.stderr).toBe(1);
    expect(lingering(run, endpoint)).toBeLessThan(DEADLINE_MS + GRACE_MS);
  });

  it('npm run run-now reports the silent AWS endpoint and exits 1 within its deadline', async () => {
    const run = await runCommand(
      'shared/cli/runNow.ts',
      ['--stack', 'Replicator'],
      cleanEnv(awsEnv(endpoint)),
    );

    expect(run.code, run.stderr).toBe(1);
    expect(lingering(run, endpoint)).toBeLessThan(DEADLINE_MS + GRACE_MS);
  });

  it('npm run demo exits 1 within its deadline when its sample account stops answering', async () => {
    const dest = freshFolder('hung-demo');

    const run = await runCommand(
      'shared/cli/demo.ts',
      ['--dest', `${dest}/demo`],
      cleanEnv({
        ADMIN_TIMEOUT_MS: String(DEADLINE_MS),
        ADMIN_RETRIES: ADMIN_TRIES,
        CLOUDINARY_DOUBLE_FAULTS: JSON.stringify([{ route: ['admin', 'search'], kind: 'hang' }]),
      }),
      { startMark: /Sample Cloudinary account/u, giveUpMs: GIVE_UP_MS },
    );

    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).toMatch(/did not answer within 1000 ms/u);
    expect(lingering(run)).toBeLessThan(DEADLINE_MS + GRACE_MS);
  });

  describe('npm run replicate', () => {
    let bed: PipelineBed;

    beforeAll(async () => {
      bed = await createPipelineBed(
        {
          library: generateLibrary({
            seed: 'hung',
            counts: { image: { upload: 2 } },
            sizes: { image: [100, 200] },
          }),
        },
        { DELIVERY_TYPES: 'upload' },
      );
    });
    afterAll(async () => bed?.close());

    it('reports the silent Admin API and exits 1 within its deadline', async () => {
      const run = await runCommand(
        'shared/cli/replicate.ts',
        [],
        cleanEnv({
          ...pipelineEnv(),
          CLOUDINARY_URL: `cloudinary://key:secret@cloud?upload_prefix=${endpoint.url}`,
          ADMIN_TIMEOUT_MS: String(DEADLINE_MS),
          ADMIN_RETRIES: ADMIN_TRIES,
        }),
      );

      expect(run.code, run.stderr).toBe(1);
      expect(lingering(run, endpoint)).toBeLessThan(DEADLINE_MS + GRACE_MS);
    });
  });
});

/** The AWS and queue settings the pipeline bed put in this process's environment. */
function pipelineEnv(): Record<string, string> {
  const names = /^(AWS_|BUCKET_NAME|TABLE_NAME|QUEUE_URL|DLQ_URL|POWERTOOLS_)/u;
  return Object.fromEntries(
    Object.entries(process.env).filter(
      (entry): entry is [string, string] => names.test(entry[0]) && !!entry[1],
    ),
  );
}

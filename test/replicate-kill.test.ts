import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AssetState, RunRecord } from '../shared/types.js';
import { generateLibrary } from './double/index.js';
import type { DoubleAsset } from './double/types.js';
import { REPO } from './support/backupBed.js';
import type { AwsResources } from './support/awsTestBed.js';
import { sleep } from './contracts/support.js';
import { bucketObjects, createPipelineBed, idOf, type PipelineBed } from './support/pipelineBed.js';

/** Seconds a dead worker's messages stay hidden and its leases held (the runner's heartbeat time). */
const IN_FLIGHT_SECONDS = 3;
const KILLS = 8;
/** Every download is paced, so the work has a floor that a fast box cannot shrink below the in-flight time. */
const BYTES_PER_SECOND = 1_750_000;

interface ChildRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  lines: Array<Record<string, unknown>>;
  stderr: string;
}

/** `npm run replicate` as a child process (node + tsx, as the npm script runs it), against `resources`. */
function startReplicate(
  resources: AwsResources,
  onFirstLine?: () => void,
): { done: Promise<ChildRun>; kill: () => void } {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'shared/cli/replicate.ts', '--json', '--workers', '1'],
    {
      cwd: REPO,
      env: {
        ...process.env,
        BUCKET_NAME: resources.bucket,
        TABLE_NAME: resources.table,
        QUEUE_URL: resources.queueUrl,
        DLQ_URL: resources.dlqUrl,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const lines: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (lines.length === 0) onFirstLine?.();
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      lines.push({ text: line });
    }
  });
  const done = new Promise<ChildRun>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal, lines, stderr })),
  );
  return { done, kill: () => child.kill('SIGKILL') };
}

/** Bytes the double has served to downloads so far. */
function fetchedBytes(bed: PipelineBed): number {
  return bed.double.counters.deliveryBytes + bed.double.counters.downloadBytes;
}

/** A seeded PRNG (mulberry32): the kill moments vary but a failure can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function openUploads(bed: PipelineBed, bucket: string): Promise<number> {
  const answer = await bed.aws.clients.s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  return (answer.Uploads ?? []).length;
}

function copied(asset: DoubleAsset, state: AssetState | undefined): boolean {
  return state?.status === 'replicated' && state.version === asset.version && state.bytes === asset.bytes;
}

describe('npm run replicate killed with kill -9, again and again', { timeout: 400_000 }, () => {
  let bed: PipelineBed;

  beforeAll(async () => {
    bed = await createPipelineBed(
      {
        library: generateLibrary({
          seed: 'replicate-kill',
          // Videos span two 5 MiB parts, so a kill can leave a multipart upload open.
          counts: { video: { upload: 10 }, image: { upload: 4 } },
          sizes: { video: [6_000_000, 7_500_000], image: [20_000, 60_000] },
        }),
      },
      {
        DELIVERY_TYPES: 'upload',
        IN_FLIGHT_SECONDS: String(IN_FLIGHT_SECONDS),
        WORKER_CONCURRENCY: '2',
        // Kills redeliver messages; none of that should send an asset to the dead letters.
        MAX_RECEIVES: '50',
      },
    );
    bed.double.faults.add({
      route: ['delivery', 'download'],
      kind: 'bandwidth',
      bytesPerSecond: BYTES_PER_SECOND,
    });
  });
  afterAll(async () => bed?.close());

  it('the next run fetches no more than the work left, reports that work, and leaves no upload open', async () => {
    const assets = bed.double.library.all();
    const here: AwsResources = { ...bed.aws };
    const next = random(20_261_206);
    // The last kill lands mid-upload (again, should an upload complete just as it lands), so the
    // next run finds a multipart upload to clear away.
    for (let kill = 0; kill < KILLS || (await openUploads(bed, here.bucket)) === 0; kill++) {
      expect(kill, 'no kill landed while an upload was open').toBeLessThan(KILLS + 5);
      const last = kill >= KILLS - 1;
      // Each kill lands once the run has fetched a further 0.5–4.5 MB: on progress, never on a timer.
      const target = fetchedBytes(bed) + 500_000 + Math.round(next() * 4_000_000);
      let polling = true;
      const run = startReplicate(here);
      void (async () => {
        while (polling && (last ? (await openUploads(bed, here.bucket)) === 0 : fetchedBytes(bed) < target))
          await sleep(50);
        run.kill();
      })();
      const ended = await run.done;
      polling = false;
      expect(ended.signal, `run ${kill + 1} ended by itself:\n${ended.stderr}`).toBe('SIGKILL');
    }

    const before = await bed.state.getMany(assets.map(idOf));
    const remaining = assets.filter((asset) => !copied(asset, before.get(idOf(asset))));
    const interrupted = (await bed.state.latestRun()) as RunRecord;
    const openBefore = await openUploads(bed, here.bucket);
    const fetchedBefore = fetchedBytes(bed);
    const recovery = await startReplicate(here).done;
    const fetchedByRecovery = fetchedBytes(bed) - fetchedBefore;

    expect(recovery.code, recovery.stderr).toBe(0);
    const after = await bed.state.getMany(assets.map(idOf));
    expect(assets.filter((asset) => !copied(asset, after.get(idOf(asset))))).toEqual([]);
    const objects = await bucketObjects(bed);
    expect(objects.size).toBe(assets.length);
    expect(await openUploads(bed, here.bucket)).toBe(0);
    // The work the recovery did is credited to the run it finished (and any run it started), not lost.
    const summary = recovery.lines.at(-1) as { event: string; runId: string; run?: RunRecord };
    expect(summary.event).toBe('summary');
    const credited = new Set([interrupted.runId, summary.runId]);
    let replicatedByRecovery = 0;
    for (const runId of credited) {
      const run = await bed.state.getRun(runId);
      const earlier = runId === interrupted.runId ? interrupted.counters.replicated : 0;
      replicatedByRecovery += (run?.counters.replicated ?? 0) - earlier;
    }
    expect(replicatedByRecovery).toBe(remaining.length);

    expect(openBefore).toBeGreaterThan(0);
    expect(remaining.length).toBeGreaterThan(0);
    // The recovery fetches at most what was left: interrupted copies continue from their recorded parts.
    expect(fetchedByRecovery).toBeLessThanOrEqual(remaining.reduce((sum, asset) => sum + asset.bytes, 0));
  });
});

import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { runBackup, type BackupEvent } from '../shared/backup/runBackup.js';
import { CloudinarySource } from '../shared/cloudinary/CloudinarySource.js';
import { listingsOf, parseCloudinaryUrl } from '../shared/config.js';
import { enumerate } from '../shared/engine/enumerate.js';
import { LocalObjectStore } from '../shared/local/LocalObjectStore.js';
import { MemoryWorkQueue } from '../shared/memory/MemoryWorkQueue.js';
import { SqliteStateStore } from '../shared/local/SqliteStateStore.js';
import { generateLibrary, startCloudinaryDouble, type CloudinaryDouble } from './double/index.js';
import {
  backupOptions,
  differencesFromLibrary,
  fastSettings,
  freshFolder,
  removeFolders,
} from './support/backupBed.js';

const doubles: CloudinaryDouble[] = [];
/** Very small originals: the test is about the Admin API, not about bytes. */
const SMALL = { image: [300, 2_000], video: [1_000, 3_000], raw: [200, 1_000] } as const;

async function startDouble(
  counts: Parameters<typeof generateLibrary>[0]['counts'],
): Promise<CloudinaryDouble> {
  const double = await startCloudinaryDouble({
    library: generateLibrary({ seed: 'admin-faults', counts, sizes: SMALL }),
    now: () => new Date('2026-03-02T10:05:00Z'),
    rateLimitPerHour: 2_000,
  });
  doubles.push(double);
  return double;
}

afterEach(async () => {
  for (const double of doubles.splice(0)) await double.close();
});
afterAll(removeFolders);

/** The listing pages that were answered (expression + cursor), to find a page listed twice. */
function listedPages(double: CloudinaryDouble): string[] {
  return double.requestLog
    .filter((entry) => entry.kind === 'search' && entry.status === 200)
    .map((entry) => `${entry.params?.expression ?? '?'} @ ${entry.params?.next_cursor ?? 'start'}`);
}

function duplicates(values: string[]): string[] {
  return values.filter((value, i) => values.indexOf(value) !== i);
}

/** Admin calls a listing needs at least: one per page of 500, one for an empty listing. */
function floorOfCalls(double: CloudinaryDouble, pageSize: number): number {
  return listingsOf(fastSettings()).reduce((sum, listing) => {
    const count = double.library
      .all()
      .filter((a) => a.resource_type === listing.resourceType && a.type === listing.deliveryType).length;
    return sum + Math.max(1, Math.ceil(count / pageSize));
  }, 0);
}

describe('a flaky Cloudinary Admin API', { timeout: 180_000 }, () => {
  it('a 3,000-asset backup with 30% of Admin calls failing completes in one run, with at most 1.5x the fewest Admin calls', async () => {
    const double = await startDouble({
      image: { upload: 2_400, private: 200, authenticated: 100 },
      video: { upload: 100 },
      raw: { upload: 200 },
    });
    // 30% in all: Cloudinary's own 500s and a load balancer's 502 pages.
    double.faults.add({ route: ['admin', 'search'], kind: 'status', status: 500, share: 0.2 });
    double.faults.add({ route: ['admin', 'search'], kind: 'status', status: 502, share: 0.125 });
    const dest = freshFolder('flaky-admin');
    const sleeps: number[] = [];

    const summary = await runBackup(
      backupOptions(double, dest, {
        concurrency: 16,
        sleep: async (ms) => {
          sleeps.push(ms);
        },
      }),
    );

    const floor = floorOfCalls(double, 500);
    const failedCalls = double.requestLog.filter(
      (entry) => (entry.kind === 'search' || entry.kind === 'admin') && entry.status >= 500,
    ).length;
    expect(double.library.size).toBe(3_000);
    expect(summary.status).toBe('completed');
    expect(summary.failed).toEqual([]);
    expect(summary.transferred).toBe(3_000);
    expect(await differencesFromLibrary(dest, double.library)).toEqual([]);
    expect(failedCalls, 'some calls failed').toBeGreaterThan(0);
    expect(sleeps, 'every failed call was retried after a backoff').toHaveLength(failedCalls);
    expect(double.counters.adminCalls).toBeLessThanOrEqual(1.5 * floor);
    expect(duplicates(listedPages(double))).toEqual([]);
  });

  it('a reset connection and a call that never answers are retried after a backoff', async () => {
    const double = await startDouble({ image: { upload: 12 } });
    double.faults.add({ route: 'search', kind: 'reset', afterBytes: 0, times: 1 });
    const dest = freshFolder('reset-hang');
    const sleeps: number[] = [];

    const summary = await runBackup(
      backupOptions(double, dest, {
        settings: fastSettings({
          resourceTypes: ['image'],
          deliveryTypes: ['upload'],
          adminTimeoutMs: 1_000,
        }),
        sleep: async (ms) => {
          sleeps.push(ms);
          // The retry after the reset meets a call that never answers.
          if (sleeps.length === 1) double.faults.add({ route: 'search', kind: 'hang', times: 1 });
        },
      }),
    );

    expect(summary.status).toBe('completed');
    expect(await differencesFromLibrary(dest, double.library)).toEqual([]);
    expect(sleeps).toHaveLength(2);
    // First retry: 1 s with jitter in its upper half; the second doubles.
    expect(sleeps[0]).toBeGreaterThanOrEqual(500);
    expect(sleeps[0]).toBeLessThanOrEqual(1_000);
    expect(sleeps[1]).toBeGreaterThanOrEqual(1_000);
    expect(sleeps[1]).toBeLessThanOrEqual(2_000);
  });

  it('an Admin API that stays down stops the run with a clear error after the listed assets are copied; the next run continues from the checkpoint', async () => {
    const double = await startDouble({ image: { upload: 15 } });
    const dest = freshFolder('down');
    const settings = fastSettings({ pageSize: 5, resourceTypes: ['image'], deliveryTypes: ['upload'] });
    const sleeps: number[] = [];
    let broken = false;
    const breakAfterFirstPage = (event: BackupEvent) => {
      if (event.kind === 'listed' && !broken) {
        broken = true;
        double.faults.add({ route: 'search', kind: 'status', status: 503 });
      }
    };

    const failure = await runBackup(
      backupOptions(double, dest, {
        settings,
        onEvent: breakAfterFirstPage,
        sleep: async (ms) => {
          sleeps.push(ms);
        },
      }),
    ).then(
      () => undefined,
      (error: unknown) => error as Error,
    );
    const state = new SqliteStateStore(dest);
    const copiedBeforeStop = (await state.getMany([])).size;
    const run = await state.latestRun();
    const replicated: string[] = [];
    for await (const asset of state.listAssets())
      if (asset.status === 'replicated') replicated.push(asset.id);
    state.close();
    double.faults.clear();
    const next = await runBackup(backupOptions(double, dest, { settings }));

    expect(failure?.message).toMatch(
      /Cloudinary's Admin API kept failing \(8 tries with backoff\); last error: .*503.*run again later and it continues from its checkpoint/u,
    );
    expect(copiedBeforeStop).toBe(0);
    expect(replicated, 'the first page was copied before the run stopped').toHaveLength(5);
    expect(run?.phase).toBe('waiting');
    expect(run?.listings['image/upload']?.pages).toBe(1);
    expect(sleeps).toHaveLength(7);
    expect(sleeps.every((ms, i) => i === 0 || ms >= (sleeps[i - 1] ?? 0) / 2)).toBe(true);
    expect(Math.max(...sleeps)).toBeLessThanOrEqual(30_000);
    expect(next.status).toBe('completed');
    expect(next.transferred).toBe(10);
    expect(await differencesFromLibrary(dest, double.library)).toEqual([]);
    expect(duplicates(listedPages(double))).toEqual([]);
  });

  it('on a small hourly limit the default reserve keeps a share of it, not a fixed 10 calls', async () => {
    const double = await startDouble({ image: { upload: 30 } });
    double.setRateLimit(20);
    const dest = freshFolder('small-limit');

    const summary = await runBackup(
      backupOptions(double, dest, {
        settings: fastSettings({ pageSize: 1, resourceTypes: ['image'], deliveryTypes: ['upload'] }),
        wait: false,
      }),
    );

    expect(fastSettings().adminReserve).toBe('2%');
    expect(summary.status).toBe('paused');
    // 2% of 20 rounds up to one call kept back: 19 pages listed in this hour.
    expect(listedPages(double)).toHaveLength(19);
    expect(double.rateLimitRemaining()).toBe(1);
  });

  it("near a Lambda's deadline a failing Admin call is not retried: the listing pauses for an immediate continuation", async () => {
    const double = await startDouble({ image: { upload: 5 } });
    double.faults.add({ route: 'search', kind: 'status', status: 500 });
    const dest = freshFolder('deadline');
    const state = new SqliteStateStore(dest);
    const store = new LocalObjectStore(dest);
    const sleeps: number[] = [];
    const now = () => double.clock.now();
    const source = new CloudinarySource({
      credentials: parseCloudinaryUrl(double.cloudinaryUrl),
      adminTimeoutMs: 5_000,
      now,
      adminRetry: { sleep: async (ms) => void sleeps.push(ms) },
    });

    const outcome = await enumerate(
      {
        source,
        state,
        store,
        queue: new MemoryWorkQueue(),
        settings: fastSettings({ resourceTypes: ['image'], deliveryTypes: ['upload'] }),
        now,
      },
      // 25 s left: the enumerator keeps 20 s back, and one more try needs the 5 s deadline plus a backoff.
      { deadline: now().getTime() + 25_000 },
    );
    const run = await state.latestRun();
    state.close();
    store.close();

    expect(outcome).toMatchObject({ status: 'paused', reason: 'deadline', resumeAt: now() });
    expect(sleeps).toEqual([]);
    expect(run?.phase).toBe('waiting');
    expect(run?.counters.adminCalls).toBe(1);
  });
});

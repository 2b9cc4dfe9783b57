import { access, constants, mkdir, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { CloudinarySource } from '../cloudinary/CloudinarySource.js';
import { listingsOf, type CloudinaryCredentials, type EngineSettings } from '../config.js';
import { ConfigError, describeError } from '../errors.js';
import { assetIdOf } from '../keys.js';
import { LocalObjectStore } from '../local/LocalObjectStore.js';
import { SqliteStateStore } from '../local/SqliteStateStore.js';
import { MemoryWorkQueue } from '../memory/MemoryWorkQueue.js';
import { needsTransfer } from '../engine/decide.js';
import { enumerate } from '../engine/enumerate.js';
import { manifestKey } from '../engine/manifest.js';
import { addRunCounters, replicateWork } from '../engine/replicate.js';
import { silentLog, type Log } from '../engine/log.js';
import type { AssetState, RunRecord } from '../types.js';

export interface BackupOptions {
  dest: string;
  credentials: CloudinaryCredentials;
  settings: EngineSettings;
  /** Downloads at once. */
  concurrency?: number;
  /** List and compare only: nothing is downloaded, written or deleted. */
  dryRun?: boolean;
  /** Remove local copies of assets deleted at the source (kept by default). */
  prune?: boolean;
  /** Wait out a spent Admin API budget (default); otherwise stop with a resumable checkpoint. */
  wait?: boolean;
  now?: () => Date;
  sleepUntil?: (at: Date) => Promise<void>;
  onEvent?: (event: BackupEvent) => void;
  log?: Log;
}

export type BackupEvent =
  | {
      kind: 'listed';
      listed: number;
      enqueued: number;
      totalListed: number;
      totalEnqueued: number;
      enqueuedBytes: number;
    }
  | { kind: 'waiting'; until: Date }
  | { kind: 'bytes'; count: number }
  | {
      kind: 'asset';
      id: string;
      outcome: 'replicated' | 'skipped' | 'gone' | 'failed';
      bytes?: number;
      error?: string;
    }
  | { kind: 'pruned'; key: string };

export interface BackupSummary {
  dest: string;
  runId?: string;
  status: 'completed' | 'paused' | 'dry-run';
  resumeAt?: string;
  listed: number;
  toTransfer: number;
  toTransferBytes: number;
  transferred: number;
  transferredBytes: number;
  unchanged: number;
  deletedAtSource: number;
  failed: Array<{ id: string; error: string }>;
  pruned: string[];
  manifest?: string;
}

const realSleepUntil = (at: Date) =>
  new Promise<void>((r) => setTimeout(r, Math.max(0, at.getTime() - Date.now())));

async function ensureWritable(dest: string): Promise<void> {
  try {
    await mkdir(dest, { recursive: true });
    if (!(await stat(dest)).isDirectory()) throw new Error('not a folder');
    await access(dest, constants.W_OK);
  } catch (error) {
    throw new ConfigError(
      `cannot write to ${dest} (${describeError(error).replace(/^Error: /u, '')}); choose a folder you can write to with --dest.`,
    );
  }
}

/**
 * Backs up a Cloudinary account into a local folder with the pipeline's own engine: the same
 * listing, transfer decision, integrity checks, key layout and manifest, with a local folder as
 * the store, SQLite as the state and an in-process queue drained by `concurrency` workers.
 */
export async function runBackup(options: BackupOptions): Promise<BackupSummary> {
  const dest = resolve(options.dest);
  const now = options.now ?? (() => new Date());
  const emit = options.onEvent ?? (() => undefined);
  const log = options.log ?? silentLog;
  await ensureWritable(dest);
  const source = new CloudinarySource({
    credentials: options.credentials,
    listingApi: options.settings.listingApi,
    pageSize: options.settings.pageSize,
    adminTimeoutMs: options.settings.adminTimeoutMs,
    idleTimeoutMs: options.settings.idleTimeoutMs,
    now,
  });
  const state = new SqliteStateStore(dest);
  try {
    if (options.dryRun) return await dryRun(dest, source, state, options);
    const store = new LocalObjectStore(dest);
    try {
      return await backup(dest, source, state, store, options, now, emit, log);
    } finally {
      store.close();
    }
  } finally {
    state.close();
  }
}

async function backup(
  dest: string,
  source: CloudinarySource,
  state: SqliteStateStore,
  store: LocalObjectStore,
  options: BackupOptions,
  now: () => Date,
  emit: (event: BackupEvent) => void,
  log: Log,
): Promise<BackupSummary> {
  const queue = new MemoryWorkQueue({ visibilityTimeoutSeconds: 3600 });
  const summary: BackupSummary = {
    dest,
    status: 'completed',
    listed: 0,
    toTransfer: 0,
    toTransferBytes: 0,
    transferred: 0,
    transferredBytes: 0,
    unchanged: 0,
    deletedAtSource: 0,
    failed: [],
    pruned: [],
  };
  await recoverInterruptedRun(state, now);

  let enqueued = 0;
  let settled = 0;
  let listingDone = false;
  let fatal: unknown;
  const deps = {
    source,
    store,
    state,
    queue,
    maxReceives: options.settings.maxReceives,
    retryBaseSeconds: Math.min(options.settings.retryBaseSeconds, 2),
    log,
    now,
    onBytes: (count: number) => emit({ kind: 'bytes', count }),
  };

  const lister = (async () => {
    let runId: string | undefined;
    for (;;) {
      const outcome = await enumerate(
        {
          source,
          state,
          queue,
          store,
          settings: options.settings,
          now,
          log,
          onPage: (_run, _listing, page) => {
            enqueued += page.enqueued;
            summary.listed += page.listed;
            summary.toTransfer += page.enqueued;
            emit({
              kind: 'listed',
              listed: page.listed,
              enqueued: page.enqueued,
              totalListed: summary.listed,
              totalEnqueued: summary.toTransfer,
              enqueuedBytes: summary.toTransferBytes,
            });
          },
        },
        { runId },
      );
      runId = outcome.run.runId;
      summary.runId = runId;
      if (outcome.status === 'completed') {
        summary.deletedAtSource = outcome.run.counters.deleted;
        summary.unchanged = outcome.run.counters.skipped;
        summary.manifest = manifestKey(runId);
        return;
      }
      if (options.wait === false) {
        summary.status = 'paused';
        summary.resumeAt = outcome.resumeAt.toISOString();
        return;
      }
      emit({ kind: 'waiting', until: outcome.resumeAt });
      await (options.sleepUntil ?? realSleepUntil)(outcome.resumeAt);
    }
  })()
    .catch((error: unknown) => {
      fatal ??= error;
    })
    .finally(() => {
      listingDone = true;
    });

  const worker = async () => {
    for (;;) {
      if (fatal !== undefined) return;
      const [work] = await queue.receive(1, 0);
      if (!work) {
        if (listingDone && settled >= enqueued) return;
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      const id = assetIdOf(work.item.asset);
      try {
        const result = await replicateWork(deps, work);
        switch (result.outcome) {
          case 'retry':
            await queue.retryLater(work, result.delaySeconds);
            continue;
          case 'dead-lettered':
            await addRunCounters(deps, work.item.runId, { failed: 1 });
            summary.failed.push({ id, error: result.error });
            emit({ kind: 'asset', id, outcome: 'failed', error: result.error });
            break;
          case 'replicated':
            summary.transferred += 1;
            summary.transferredBytes += result.bytes;
            await addRunCounters(deps, work.item.runId, { replicated: 1, bytes: result.bytes });
            await queue.ack(work);
            emit({ kind: 'asset', id, outcome: 'replicated', bytes: result.bytes });
            break;
          default:
            await queue.ack(work);
            emit({ kind: 'asset', id, outcome: result.outcome === 'gone' ? 'gone' : 'skipped' });
        }
        settled += 1;
      } catch (error) {
        fatal ??= error;
        return;
      }
    }
  };

  await Promise.all([lister, ...Array.from({ length: options.concurrency ?? 4 }, worker)]);
  if (fatal !== undefined) throw fatal;
  summary.toTransferBytes = summary.transferredBytes;
  if (options.prune && summary.status === 'completed') {
    summary.pruned = await pruneDeleted(state, store, emit);
  }
  return summary;
}

/**
 * A run killed while listing lost its in-memory queue: it is listed again from the start (pages
 * already copied are recognised by the state and skipped), instead of trusting a cursor past
 * assets that were never copied. A run stopped by --no-wait drained its queue and continues.
 */
async function recoverInterruptedRun(state: SqliteStateStore, now: () => Date): Promise<void> {
  const latest = await state.latestRun();
  if (!latest || (latest.phase !== 'listing' && latest.phase !== 'finalizing')) return;
  const restarted: RunRecord = {
    ...latest,
    phase: 'listing',
    listings: {},
    updatedAt: new Date(Math.max(now().getTime(), Date.parse(latest.updatedAt) + 1)).toISOString(),
  };
  await state.putRun(restarted, latest.updatedAt);
}

async function pruneDeleted(
  state: SqliteStateStore,
  store: LocalObjectStore,
  emit: (event: BackupEvent) => void,
): Promise<string[]> {
  const pruned: string[] = [];
  for await (const asset of state.listAssets()) {
    if (asset.status !== 'deleted-at-source') continue;
    if (await store.delete(asset.objectKey)) {
      pruned.push(asset.objectKey);
      emit({ kind: 'pruned', key: asset.objectKey });
    }
  }
  return pruned;
}

async function dryRun(
  dest: string,
  source: CloudinarySource,
  state: SqliteStateStore,
  options: BackupOptions,
): Promise<BackupSummary> {
  const summary: BackupSummary = {
    dest,
    status: 'dry-run',
    listed: 0,
    toTransfer: 0,
    toTransferBytes: 0,
    transferred: 0,
    transferredBytes: 0,
    unchanged: 0,
    deletedAtSource: 0,
    failed: [],
    pruned: [],
  };
  const seen = new Set<string>();
  const listings = listingsOf(options.settings);
  for (const listing of listings) {
    let cursor: string | undefined;
    do {
      const page = await source.listPage(listing, cursor);
      const states = await state.getMany(page.assets.map(assetIdOf));
      for (const asset of page.assets) {
        const id = assetIdOf(asset);
        seen.add(id);
        summary.listed += 1;
        if (needsTransfer(asset, states.get(id))) {
          summary.toTransfer += 1;
          summary.toTransferBytes += asset.bytes;
        } else summary.unchanged += 1;
      }
      options.onEvent?.({
        kind: 'listed',
        listed: page.assets.length,
        enqueued: 0,
        totalListed: summary.listed,
        totalEnqueued: summary.toTransfer,
        enqueuedBytes: summary.toTransferBytes,
      });
      cursor = page.nextCursor;
    } while (cursor);
  }
  const covered = new Set(listings.map((l) => `${l.resourceType}/${l.deliveryType}`));
  const gone: AssetState[] = [];
  for await (const asset of state.listAssets()) {
    if (covered.has(`${asset.resourceType}/${asset.deliveryType}`) && !seen.has(asset.id)) gone.push(asset);
  }
  summary.deletedAtSource = gone.length;
  if (options.prune) summary.pruned = gone.map((a) => a.objectKey);
  return summary;
}

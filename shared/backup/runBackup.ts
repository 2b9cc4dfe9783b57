import { access, constants, mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CloudinarySource } from '../cloudinary/CloudinarySource.js';
import type { CloudinaryCredentials, EngineSettings } from '../config.js';
import { LOCAL_CONTROL_DIR } from '../constants.js';
import { unavailableNotes } from '../cloudinary/listingCapabilities.js';
import { ConfigError, describeError, RetryableError } from '../errors.js';
import { assetIdOf, objectKeyFor } from '../keys.js';
import { removeFile } from '../local/files.js';
import { acquireFolderLock } from '../local/FolderLock.js';
import { refuseSystemFolder } from '../local/systemFolders.js';
import { LocalObjectStore } from '../local/LocalObjectStore.js';
import { foldPath, placeKey } from '../local/safePath.js';
import { SqliteStateStore } from '../local/SqliteStateStore.js';
import { MemoryWorkQueue } from '../memory/MemoryWorkQueue.js';
import { enumerate } from '../engine/enumerate.js';
import { manifestKey } from '../engine/manifest.js';
import { addRunCounters, replicateWork } from '../engine/replicate.js';
import { silentLog, type Log } from '../engine/log.js';
import type { RunRecord, WorkItem, WorkQueue } from '../types.js';
import { dryRun } from './dryRun.js';
import {
  emptySummary,
  PARTIALS_DIR,
  realSleepUntil,
  type BackupEvent,
  type BackupSummary,
} from './summary.js';

export type { BackupEvent, BackupSummary } from './summary.js';

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
  /** Retry quarantined assets too (permanent failures, otherwise retried only when they change). */
  redrive?: boolean;
  now?: () => Date;
  sleepUntil?: (at: Date) => Promise<void>;
  /** Waits between retries of a failed Admin API call (tests inject it). */
  sleep?: (ms: number) => Promise<void>;
  onEvent?: (event: BackupEvent) => void;
  log?: Log;
}

/**
 * Copy leases guard against a second delivery of one SQS message. Here the folder lock keeps other
 * processes out and the in-memory queue hands each message to one worker at a time, so a lease can
 * only be a leftover of a killed backup, which must not stall this one until it expires.
 */
const LEASE_MS = 0;
/**
 * Downloads at once unless told otherwise (`--concurrency`), measured with `npm run bench`: 5,000
 * small files took 5.7 s with 32 against 7.2 s with 16 (more files finish together, so each group
 * commit carries more of them), photos and videos the same; 64 gained nothing more.
 */
export const DEFAULT_BACKUP_CONCURRENCY = 32;
/** Pages of assets queued and not yet settled past which the listing waits (workers never starve). */
const BACKLOG_PAGES = 2;
/** Says which paused checkpoint left nothing behind in the in-memory queue (see recoverInterruptedRun). */
const CHECKPOINT_FILE = 'backup-checkpoint.json';

function unwritable(dest: string, error: unknown): ConfigError {
  return new ConfigError(
    `cannot write to ${dest} (${describeError(error).replace(/^Error: /u, '')}); choose a folder you can write to with --dest.`,
  );
}

async function ensureWritable(dest: string): Promise<void> {
  try {
    await mkdir(dest, { recursive: true });
    if (!(await stat(dest)).isDirectory()) throw new Error('not a folder');
    await access(dest, constants.W_OK);
    await mkdir(join(dest, LOCAL_CONTROL_DIR), { recursive: true });
    await access(join(dest, LOCAL_CONTROL_DIR), constants.W_OK);
  } catch (error) {
    throw unwritable(dest, error);
  }
}

/** A dry run creates nothing: it only checks that a folder already there could be written to. */
async function checkDryRunDestination(dest: string): Promise<void> {
  const info = await stat(dest).catch(() => undefined);
  if (!info) return;
  try {
    if (!info.isDirectory()) throw new Error('not a folder');
    await access(dest, constants.W_OK);
  } catch (error) {
    throw unwritable(dest, error);
  }
}

/** A partial file named after its key and version: the next run continues it. */
const RESUMABLE_PARTIAL = /^[0-9a-f]{40}\.v\d+\.part$/u;

/**
 * Half-written files of a killed backup: never under a final name, but they would fill the disk.
 * Resumable ones are kept for this run's copies unless `olderThan` (the end of a run: no copy of
 * this run touched them, so their asset is gone or changed).
 */
async function removeStalePartials(dest: string, olderThan?: Date): Promise<void> {
  const dir = join(dest, LOCAL_CONTROL_DIR, PARTIALS_DIR);
  for (const name of await readdir(dir).catch(() => [])) {
    if (!name.endsWith('.part')) continue;
    if (RESUMABLE_PARTIAL.test(name)) {
      if (!olderThan) continue;
      const info = await stat(join(dir, name)).catch(() => undefined);
      if (!info || info.mtime >= olderThan) continue;
    }
    await removeFile(join(dir, name));
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
  const source = new CloudinarySource({
    credentials: options.credentials,
    listingApi: options.settings.listingApi,
    pageSize: options.settings.pageSize,
    adminTimeoutMs: options.settings.adminTimeoutMs,
    idleTimeoutMs: options.settings.idleTimeoutMs,
    adminReserve: options.settings.adminReserve,
    adminRetry: {
      tries: options.settings.adminRetries,
      ...(options.sleep ? { sleep: options.sleep } : {}),
    },
    log,
    now,
  });
  await refuseSystemFolder(options.dest);
  if (options.dryRun) {
    await checkDryRunDestination(dest);
    return dryRun(dest, source, options, now, emit);
  }
  await ensureWritable(dest);
  let release: () => Promise<void>;
  try {
    // Held while a backup writes into a folder, so two backups never share (or clear) partial files.
    release = await acquireFolderLock(dest);
  } catch (error) {
    throw error instanceof ConfigError ? error : unwritable(dest, error);
  }
  try {
    await removeStalePartials(dest);
    // File times are the file system's clock (not the run's, which tests may set), FAT's to 2 s.
    const startedAt = new Date(Date.now() - 2000);
    const state = new SqliteStateStore(dest);
    try {
      const store = new LocalObjectStore(dest);
      try {
        const summary = await backup(dest, source, state, store, options, now, emit, log);
        if (summary.status === 'completed') await removeStalePartials(dest, startedAt);
        return summary;
      } finally {
        store.close();
      }
    } finally {
      state.close();
    }
  } finally {
    await release();
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
  const summary = emptySummary(dest, 'completed');
  let enqueued = 0;
  let settled = 0;
  let sent = 0;
  let listingDone = false;
  let fatal: unknown;
  const maxBacklog = BACKLOG_PAGES * Math.max(1, options.settings.pageSize);
  const queue = countingQueue(new MemoryWorkQueue({ visibilityTimeoutSeconds: 3600 }), {
    // The listing waits while a backlog is queued: memory stays flat whatever the library's size.
    beforeSend: async () => {
      while (sent - settled >= maxBacklog) {
        if (fatal !== undefined) throw new Error('the backup stopped');
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    onSend: (items) => {
      sent += items.length;
      summary.toTransferBytes += items.reduce((sum, item) => sum + item.asset.bytes, 0);
    },
  });
  await recoverInterruptedRun(dest, state, now);

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
  /** Resolves once every enqueued asset is settled (or the run cannot go on). */
  const drained = async (): Promise<void> => {
    while (settled < enqueued && fatal === undefined) await new Promise((r) => setTimeout(r, 20));
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
            // A worker hit a fatal error: stop listing (the run stays resumable) instead of listing on.
            if (fatal !== undefined) throw new Error('the backup stopped');
            enqueued += page.enqueued;
            summary.verifiedLater += page.upgraded;
            summary.listed += page.listed;
            summary.toTransfer += page.enqueued;
            summary.unchanged += page.listed - page.enqueued;
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
        { runId, redrive: options.redrive },
      );
      runId = outcome.run.runId;
      summary.runId = runId;
      summary.unavailable = unavailableNotes(source.capabilities);
      if (outcome.status === 'completed') {
        summary.deletedAtSource = outcome.run.counters.deleted;
        summary.manifest = manifestKey(runId);
        summary.listing = outcome.run.coverage?.kind === 'changes' ? 'changes' : 'full';
        return;
      }
      const checkpoint = outcome.run;
      // Without the mark a later run merely lists this run's pages again.
      const markWhenDrained = drained()
        .then(() => (fatal === undefined ? markCleanCheckpoint(dest, checkpoint) : undefined))
        .catch((error: unknown) =>
          log.warn('could not record the checkpoint', { error: describeError(error) }),
        );
      if (outcome.reason === 'source-unavailable') {
        // Copy what was listed, keep the checkpoint, and stop: the next run continues from it.
        await markWhenDrained;
        throw new RetryableError(outcome.error ?? "Cloudinary's Admin API is unavailable; run again later.");
      }
      if (options.wait === false) {
        summary.status = 'paused';
        summary.resumeAt = outcome.resumeAt.toISOString();
        await markWhenDrained;
        return;
      }
      emit({ kind: 'waiting', until: outcome.resumeAt });
      // Listing goes on once the budget is back and the queue is empty (so the checkpoint is clean).
      await Promise.all([(options.sleepUntil ?? realSleepUntil)(outcome.resumeAt), markWhenDrained]);
      if (fatal !== undefined) return;
    }
  })()
    .catch((error: unknown) => {
      fatal ??= error;
    })
    .finally(() => {
      listingDone = true;
    });

  // Two keys whose files would share a name on a case-insensitive disk are never placed at once:
  // the first listed takes the name, the next goes under _unsafe/, as `npm run pull` places them.
  const placing = new Map<string, Promise<unknown>>();
  const oneAtATime = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
    const previous = placing.get(name) ?? Promise.resolve();
    const current = previous.catch(() => undefined).then(work);
    placing.set(name, current);
    try {
      return await current;
    } finally {
      if (placing.get(name) === current) placing.delete(name);
    }
  };

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
      const key = objectKeyFor(work.item.asset);
      const place = foldPath(placeKey(key).relative);
      try {
        const result = await oneAtATime(place, () => replicateWork(deps, work, { leaseMs: LEASE_MS }));
        switch (result.outcome) {
          case 'retry':
            await queue.retryLater(work, result.delaySeconds);
            continue;
          case 'dead-lettered':
            await addRunCounters(deps, work.item.runId, { failed: 1, settled: 1 });
            summary.failed.push({ id, error: result.error });
            emit({ kind: 'asset', id, outcome: 'failed', error: result.error, path: store.localPathOf(key) });
            break;
          case 'replicated':
            summary.transferred += 1;
            summary.transferredBytes += result.bytes;
            if (result.verifiedBy === 'size') summary.verifiedBySize += 1;
            await addRunCounters(deps, work.item.runId, { replicated: 1, bytes: result.bytes, settled: 1 });
            await queue.ack(work);
            emit({
              kind: 'asset',
              id,
              outcome: 'replicated',
              bytes: result.bytes,
              path: store.localPathOf(key),
            });
            break;
          default:
            await addRunCounters(deps, work.item.runId, { settled: 1 });
            await queue.ack(work);
            emit({
              kind: 'asset',
              id,
              outcome: result.outcome === 'gone' ? 'gone' : 'skipped',
              path: store.localPathOf(key),
            });
        }
        // Also in the run record: the next run lists only changes once every copy of this one settled.
        settled += 1;
      } catch (error) {
        fatal ??= error;
        return;
      }
    }
  };

  await Promise.all([
    lister,
    ...Array.from({ length: options.concurrency ?? DEFAULT_BACKUP_CONCURRENCY }, worker),
  ]);
  if (fatal !== undefined) throw fatal;
  if (options.prune && summary.status === 'completed') {
    summary.pruned = await pruneDeleted(state, store, emit);
  }
  return summary;
}

/**
 * The queue, telling `onSend` what is enqueued (the bytes to copy, for progress and ETA) once
 * `beforeSend` lets it through.
 */
function countingQueue(
  queue: WorkQueue,
  hooks: { beforeSend: () => Promise<void>; onSend: (items: WorkItem[]) => void },
): WorkQueue {
  return {
    sendBatch: async (items) => {
      await hooks.beforeSend();
      await queue.sendBatch(items);
      hooks.onSend(items);
    },
    receive: (max, waitSeconds) => queue.receive(max, waitSeconds),
    ack: (work) => queue.ack(work),
    retryLater: (work, delaySeconds) => queue.retryLater(work, delaySeconds),
    extendVisibility: (work, seconds) => queue.extendVisibility(work, seconds),
    deadLetter: (work, reason) => queue.deadLetter(work, reason),
  };
}

interface CleanCheckpoint {
  runId: string;
  updatedAt: string;
}

/** Records that this paused checkpoint has nothing left in the queue: a later run may continue from its cursors. */
async function markCleanCheckpoint(dest: string, run: RunRecord): Promise<void> {
  const file = join(dest, LOCAL_CONTROL_DIR, CHECKPOINT_FILE);
  const mark: CleanCheckpoint = { runId: run.runId, updatedAt: run.updatedAt };
  await writeFile(`${file}.new`, JSON.stringify(mark));
  await rename(`${file}.new`, file);
}

async function isCleanCheckpoint(dest: string, run: RunRecord): Promise<boolean> {
  const text = await readFile(join(dest, LOCAL_CONTROL_DIR, CHECKPOINT_FILE), 'utf8').catch(() => '');
  try {
    const mark = JSON.parse(text) as Partial<CleanCheckpoint>;
    return mark.runId === run.runId && mark.updatedAt === run.updatedAt;
  } catch {
    return false;
  }
}

/**
 * The queue lives in memory: a run killed while listing, or while waiting out the Admin API budget
 * before its queue was empty, lost assets that its cursors are already past. Such a run is listed
 * again from the start (pages already copied are recognised by the state and skipped). A run that
 * stopped with an empty queue (--no-wait, or a wait it finished copying in) continues from its cursors.
 */
async function recoverInterruptedRun(dest: string, state: SqliteStateStore, now: () => Date): Promise<void> {
  const latest = await state.latestRun();
  if (!latest) return;
  const interrupted =
    latest.phase === 'listing' ||
    latest.phase === 'finalizing' ||
    (latest.phase === 'waiting' && !(await isCleanCheckpoint(dest, latest)));
  if (!interrupted) return;
  const restarted: RunRecord = {
    ...latest,
    phase: 'listing',
    listings: {},
    resumeAt: undefined,
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

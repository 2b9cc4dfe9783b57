import { existsSync } from 'node:fs';
import { access, constants, mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CloudinarySource } from '../cloudinary/CloudinarySource.js';
import { listingsOf, type CloudinaryCredentials, type EngineSettings } from '../config.js';
import { LOCAL_CONTROL_DIR } from '../constants.js';
import { ConfigError, describeError } from '../errors.js';
import { assetIdOf, objectKeyFor } from '../keys.js';
import { removeFile } from '../local/files.js';
import { LocalObjectStore, OBJECT_INDEX_FILE } from '../local/LocalObjectStore.js';
import { foldPath, placeKey } from '../local/safePath.js';
import { SqliteStateStore, STATE_FILE } from '../local/SqliteStateStore.js';
import { MemoryWorkQueue } from '../memory/MemoryWorkQueue.js';
import { needsTransfer } from '../engine/decide.js';
import { enumerate } from '../engine/enumerate.js';
import { manifestKey } from '../engine/manifest.js';
import { addRunCounters, replicateWork } from '../engine/replicate.js';
import { silentLog, type Log } from '../engine/log.js';
import type { AssetState, RunRecord, WorkItem, WorkQueue } from '../types.js';

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

function emptySummary(dest: string, status: BackupSummary['status']): BackupSummary {
  return {
    dest,
    status,
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
}

const realSleepUntil = (at: Date) =>
  new Promise<void>((r) => setTimeout(r, Math.max(0, at.getTime() - Date.now())));

/** Where LocalObjectStore streams files before their rename; only `*.part` files are ours to clear. */
const PARTIALS_DIR = 'tmp';
/** Held while a backup writes into a folder, so two backups never share (or clear) partial files. */
const LOCK_FILE = 'backup.lock';
/**
 * Copy leases guard against a second delivery of one SQS message. Here the folder lock keeps other
 * processes out and the in-memory queue hands each message to one worker at a time, so a lease can
 * only be a leftover of a killed backup, which must not stall this one until it expires.
 */
const LEASE_MS = 0;
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

/** Takes the folder's backup lock; one left by a process that no longer runs (kill -9) is taken over. */
async function acquireLock(dest: string): Promise<() => Promise<void>> {
  const lockPath = join(dest, LOCAL_CONTROL_DIR, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(lockPath, `${process.pid}\n`, { flag: 'wx' });
      return () => removeFile(lockPath);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw unwritable(dest, error);
      const holder = Number((await readFile(lockPath, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isRunning(holder)) {
        throw new ConfigError(
          `another backup into ${dest} is running (process ${holder}); wait for it to finish, or stop it.`,
        );
      }
      await removeFile(lockPath);
    }
  }
  throw new ConfigError(`could not take ${lockPath}; is another backup starting right now? Try again.`);
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Half-written files of a killed backup: never under a final name, but they would fill the disk. */
async function removeStalePartials(dest: string): Promise<void> {
  const dir = join(dest, LOCAL_CONTROL_DIR, PARTIALS_DIR);
  for (const name of await readdir(dir).catch(() => [])) {
    if (name.endsWith('.part')) await removeFile(join(dir, name));
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
    now,
  });
  if (options.dryRun) {
    await checkDryRunDestination(dest);
    return dryRun(dest, source, options, emit);
  }
  await ensureWritable(dest);
  const release = await acquireLock(dest);
  try {
    await removeStalePartials(dest);
    const state = new SqliteStateStore(dest);
    try {
      const store = new LocalObjectStore(dest);
      try {
        return await backup(dest, source, state, store, options, now, emit, log);
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
  const queue = countingQueue(new MemoryWorkQueue({ visibilityTimeoutSeconds: 3600 }), (items) => {
    summary.toTransferBytes += items.reduce((sum, item) => sum + item.asset.bytes, 0);
  });
  await recoverInterruptedRun(dest, state, now);

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
      if (outcome.status === 'completed') {
        summary.deletedAtSource = outcome.run.counters.deleted;
        summary.manifest = manifestKey(runId);
        return;
      }
      const checkpoint = outcome.run;
      // Without the mark a later run merely lists this run's pages again.
      const markWhenDrained = drained()
        .then(() => (fatal === undefined ? markCleanCheckpoint(dest, checkpoint) : undefined))
        .catch((error: unknown) =>
          log.warn('could not record the checkpoint', { error: describeError(error) }),
        );
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
      const place = foldPath(placeKey(objectKeyFor(work.item.asset)).relative);
      try {
        const result = await oneAtATime(place, () => replicateWork(deps, work, { leaseMs: LEASE_MS }));
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
  if (options.prune && summary.status === 'completed') {
    summary.pruned = await pruneDeleted(state, store, emit);
  }
  return summary;
}

/** The queue, telling `onSend` what is enqueued (the bytes to copy, for progress and ETA). */
function countingQueue(queue: WorkQueue, onSend: (items: WorkItem[]) => void): WorkQueue {
  return {
    sendBatch: async (items) => {
      await queue.sendBatch(items);
      onSend(items);
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

/**
 * Lists and compares without writing anything: not the folder, not the state (an existing state
 * is read; without one everything would be copied), not a manifest.
 */
async function dryRun(
  dest: string,
  source: CloudinarySource,
  options: BackupOptions,
  emit: (event: BackupEvent) => void,
): Promise<BackupSummary> {
  const controlDir = join(dest, LOCAL_CONTROL_DIR);
  const hasState = existsSync(join(controlDir, STATE_FILE));
  const state = new SqliteStateStore(dest, hasState ? {} : { file: ':memory:' });
  try {
    const summary = emptySummary(dest, 'dry-run');
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
          if (needsTransfer(asset, states.get(id), { redrive: options.redrive })) {
            summary.toTransfer += 1;
            summary.toTransferBytes += asset.bytes;
          } else summary.unchanged += 1;
        }
        emit({
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
    // As the real run decides: what a complete listing no longer returns is deleted at the source.
    const covered = new Set(listings.map((l) => `${l.resourceType}/${l.deliveryType}`));
    const gone: AssetState[] = [];
    for await (const asset of state.listAssets()) {
      if (!covered.has(`${asset.resourceType}/${asset.deliveryType}`) || seen.has(asset.id)) continue;
      if (asset.status !== 'deleted-at-source') summary.deletedAtSource += 1;
      gone.push(asset);
    }
    if (options.prune) summary.pruned = await presentCopies(dest, gone);
    return summary;
  } finally {
    state.close();
  }
}

/** The object keys among `assets` whose copy is still in the folder (what --delete would remove). */
async function presentCopies(dest: string, assets: AssetState[]): Promise<string[]> {
  const controlDir = join(dest, LOCAL_CONTROL_DIR);
  if (assets.length === 0 || !existsSync(join(controlDir, OBJECT_INDEX_FILE))) return [];
  if (!existsSync(join(controlDir, PARTIALS_DIR))) return [];
  const store = new LocalObjectStore(dest);
  try {
    const present: string[] = [];
    for (const asset of assets) if (await store.head(asset.objectKey)) present.push(asset.objectKey);
    return present;
  } finally {
    store.close();
  }
}

import { randomBytes } from 'node:crypto';
import { listingId, listingsOf, type EngineSettings } from '../config.js';
import { FatalError, RateLimitedError, describeError } from '../errors.js';
import { assetIdOf } from '../keys.js';
import type {
  AssetSource,
  Listing,
  ObjectStore,
  RateLimit,
  RunCounters,
  RunRecord,
  SourceAsset,
  StateStore,
  WorkQueue,
} from '../types.js';
import { needsTransfer } from './decide.js';
import { silentLog, type Log } from './log.js';
import {
  manifestPartKey,
  manifestParts,
  readManifest,
  writeFinalManifest,
  writeManifestPart,
} from './manifest.js';

export interface EnumerateDeps {
  source: AssetSource & { readonly rateLimit?: RateLimit };
  state: StateStore;
  queue: WorkQueue;
  /** Where manifests go (the backup bucket or folder). */
  store: ObjectStore;
  settings: Pick<EngineSettings, 'resourceTypes' | 'deliveryTypes' | 'adminReserve'>;
  now?: () => Date;
  log?: Log;
  /** Called after each page, for progress displays. */
  onPage?: (run: RunRecord, listing: Listing, page: { listed: number; enqueued: number }) => void;
}

export interface EnumerateRequest {
  /** Continue this run; without it an unfinished run is continued or a new one started. */
  runId?: string;
  /** Epoch ms by which this invocation must have stopped (a Lambda's deadline). */
  deadline?: number;
  /** A new run retries quarantined assets too (kept in the run record for its continuations). */
  redrive?: boolean;
}

export type EnumerateOutcome =
  | { status: 'completed'; run: RunRecord }
  | { status: 'paused'; run: RunRecord; resumeAt: Date; reason: 'rate-limit' | 'deadline' };

/** Time kept back before the deadline to write the checkpoint and schedule the continuation. */
const DEADLINE_MARGIN_MS = 20_000;

export function emptyCounters(): RunCounters {
  return {
    listed: 0,
    enqueued: 0,
    skipped: 0,
    replicated: 0,
    failed: 0,
    deleted: 0,
    bytes: 0,
    adminCalls: 0,
    settled: 0,
  };
}

export function newRunId(now: Date): string {
  return `${now.toISOString().replace(/[:.]/gu, '-')}-${randomBytes(3).toString('hex')}`;
}

/**
 * Lists every configured listing page by page, enqueues what needs copying, checkpoints each
 * listing's cursor after every page, and stops cleanly before the deadline or the Admin API
 * reserve. After a complete listing it marks unseen assets `deleted-at-source` and writes the
 * run's manifest.
 */
export async function enumerate(
  deps: EnumerateDeps,
  request: EnumerateRequest = {},
): Promise<EnumerateOutcome> {
  const now = deps.now ?? (() => new Date());
  const log = deps.log ?? silentLog;
  let run = await openRun(deps, request.runId, now, request.redrive === true);
  const listings = listingsOf(deps.settings);
  log.info('enumerate: run open', { runId: run.runId, phase: run.phase });

  const save = async (changes: Partial<RunRecord>): Promise<void> => {
    const next: RunRecord = { ...run, ...changes, updatedAt: now().toISOString() };
    if (next.updatedAt === run.updatedAt) next.updatedAt = new Date(now().getTime() + 1).toISOString();
    await deps.state.putRun(next, run.updatedAt);
    run = next;
  };
  const pause = async (resumeAt: Date, reason: 'rate-limit' | 'deadline'): Promise<EnumerateOutcome> => {
    await save({ phase: 'waiting', resumeAt: resumeAt.toISOString() });
    log.info('enumerate: paused', { runId: run.runId, reason, resumeAt: resumeAt.toISOString() });
    return { status: 'paused', run, resumeAt, reason };
  };

  try {
    if (run.phase !== 'listing') await save({ phase: 'listing', resumeAt: undefined });
    for (const listing of listings) {
      const id = listingId(listing);
      while (!(run.listings[id]?.done ?? false)) {
        if (request.deadline !== undefined && now().getTime() > request.deadline - DEADLINE_MARGIN_MS) {
          return await pause(now(), 'deadline');
        }
        const budget = deps.source.rateLimit;
        if (budget && budget.remaining <= deps.settings.adminReserve && budget.resetAt > now()) {
          return await pause(budget.resetAt, 'rate-limit');
        }
        const progress = run.listings[id] ?? { pages: 0, done: false };
        let page;
        try {
          page = await deps.source.listPage(listing, progress.cursor);
        } catch (error) {
          if (error instanceof RateLimitedError) {
            await save({ counters: { ...run.counters, adminCalls: run.counters.adminCalls + 1 } });
            return await pause(error.resetAt, 'rate-limit');
          }
          throw error;
        }
        const { enqueued, skipped } = await enqueueChanged(deps, run, page.assets);
        await writeManifestPart(deps.store, manifestPartKey(run.runId, id, progress.pages), page.assets);
        await save({
          listings: {
            ...run.listings,
            [id]: { cursor: page.nextCursor, pages: progress.pages + 1, done: !page.nextCursor },
          },
          counters: {
            ...run.counters,
            listed: run.counters.listed + page.assets.length,
            enqueued: run.counters.enqueued + enqueued,
            skipped: run.counters.skipped + skipped,
            adminCalls: run.counters.adminCalls + 1,
          },
        });
        deps.onPage?.(run, listing, { listed: page.assets.length, enqueued });
      }
    }
    await save({ phase: 'finalizing' });
    const deleted = await finalize(deps, run, listings, now);
    await save({
      phase: 'completed',
      finishedAt: now().toISOString(),
      resumeAt: undefined,
      counters: { ...run.counters, deleted: run.counters.deleted + deleted },
    });
    log.info('enumerate: run completed', { runId: run.runId, counters: run.counters });
    return { status: 'completed', run };
  } catch (error) {
    if (error instanceof FatalError) {
      const message = describeError(error);
      log.error('enumerate: run failed', { runId: run.runId, error: message });
      await deps.state.putRun(
        { ...run, phase: 'failed', error: message, updatedAt: now().toISOString() },
        run.updatedAt,
      );
    }
    throw error;
  }
}

async function openRun(
  deps: EnumerateDeps,
  runId: string | undefined,
  now: () => Date,
  redrive: boolean,
): Promise<RunRecord> {
  if (runId) {
    const run = await deps.state.getRun(runId);
    if (!run) throw new FatalError(`run ${runId} does not exist; start a new run instead.`);
    if (run.phase === 'completed' || run.phase === 'failed') {
      throw new FatalError(`run ${runId} is already ${run.phase}; start a new run instead.`);
    }
    return run;
  }
  const latest = await deps.state.latestRun();
  if (latest && (latest.phase === 'listing' || latest.phase === 'waiting' || latest.phase === 'finalizing')) {
    return latest;
  }
  const at = now();
  const run: RunRecord = {
    runId: newRunId(at),
    phase: 'listing',
    listings: {},
    counters: emptyCounters(),
    startedAt: at.toISOString(),
    updatedAt: at.toISOString(),
    ...(redrive ? { redrive: true } : {}),
  };
  await deps.state.putRun(run);
  return run;
}

async function enqueueChanged(
  deps: EnumerateDeps,
  run: RunRecord,
  assets: SourceAsset[],
): Promise<{ enqueued: number; skipped: number }> {
  if (assets.length === 0) return { enqueued: 0, skipped: 0 };
  const runId = run.runId;
  const states = await deps.state.getMany(assets.map(assetIdOf));
  const options = { redrive: run.redrive === true };
  const changed = assets.filter((asset) => needsTransfer(asset, states.get(assetIdOf(asset)), options));
  // Tags, context and metadata travel in the manifest; the work item stays small.
  await deps.queue.sendBatch(
    changed.map((asset) => ({
      runId,
      asset: { ...asset, tags: undefined, context: undefined, metadata: undefined },
    })),
  );
  return { enqueued: changed.length, skipped: assets.length - changed.length };
}

/** Marks what a complete listing did not return as deleted at the source; writes the manifest. */
async function finalize(
  deps: EnumerateDeps,
  run: RunRecord,
  listings: Listing[],
  now: () => Date,
): Promise<number> {
  const parts = await manifestParts(deps.store, run.runId);
  const seen = new Set<string>();
  for (const part of parts) {
    for await (const entry of readManifest(deps.store, part)) seen.add(entry.id);
  }
  const covered = new Set(listings.map(listingId));
  const gone: string[] = [];
  for await (const state of deps.state.listAssets()) {
    if (state.status === 'deleted-at-source') continue;
    if (!covered.has(`${state.resourceType}/${state.deliveryType}`)) continue;
    if (!seen.has(state.id)) gone.push(state.id);
  }
  if (gone.length > 0) await deps.state.markDeleted(gone, now().toISOString());
  await writeFinalManifest(deps.store, run.runId, parts);
  (deps.log ?? silentLog).info('enumerate: finalized', {
    runId: run.runId,
    deleted: gone.length,
    seen: seen.size,
  });
  return gone.length;
}

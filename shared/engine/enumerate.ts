import { randomBytes } from 'node:crypto';
import { listingId, listingsOf, reserveFor } from '../config.js';
import { FatalError, RateLimitedError, RetryableError, describeError } from '../errors.js';
import { AdminRetryOutOfTimeError } from '../cloudinary/adminRetry.js';
import { sameCapabilities, unavailableNotes } from '../cloudinary/listingCapabilities.js';
import { assetIdOf } from '../keys.js';
import type { EngineSettings } from '../config.js';
import type {
  AssetSource,
  SourcePage,
  ObjectStore,
  RateLimit,
  RunCounters,
  RunRecord,
  SourceAsset,
  StateStore,
  WorkerSwitch,
  WorkQueue,
} from '../types.js';
import { etagCheckOf, needsTransfer } from './decide.js';
import { silentLog, type Log } from './log.js';
import { CHANGES_LISTING, coverageFor, type CoverageSettings } from './coverage.js';
import { finalizeListing } from './finalize.js';
import { manifestPartKey, writeManifestPart } from './manifest.js';

export interface EnumerateDeps {
  source: AssetSource & { readonly rateLimit?: RateLimit };
  state: StateStore;
  queue: WorkQueue;
  /** Started when a new run opens, so messages an earlier run left behind are copied; absent locally. */
  workers?: WorkerSwitch;
  /** Where manifests go (the backup bucket or folder). */
  store: ObjectStore;
  settings: CoverageSettings & Pick<EngineSettings, 'adminReserve'>;
  now?: () => Date;
  log?: Log;
  /** Called after each page, for progress displays; `walk` is a listing id or `changes`. */
  onPage?: (run: RunRecord, walk: string, page: PageReport) => void;
}

/** What one listed page did. */
export interface PageReport {
  listed: number;
  enqueued: number;
  /** Copies verified by size only whose MD5 the etag now confirmed (no download). */
  upgraded: number;
  /** Copies whose MD5 differs from the etag now given: enqueued to be copied again. */
  mismatched: number;
}

export interface EnumerateRequest {
  /** Continue this run; without it an unfinished run is continued or a new one started. */
  runId?: string;
  /** Epoch ms by which this invocation must have stopped (a Lambda's deadline). */
  deadline?: number;
  /** A new run retries quarantined assets too (kept in the run record for its continuations). */
  redrive?: boolean;
}

export type PauseReason = 'rate-limit' | 'deadline' | 'source-unavailable';

export type EnumerateOutcome =
  | { status: 'completed'; run: RunRecord }
  | { status: 'paused'; run: RunRecord; resumeAt: Date; reason: PauseReason; error?: string };

/** Time kept back before the deadline to write the checkpoint and schedule the continuation. */
const DEADLINE_MARGIN_MS = 20_000;
/** After the Admin API stayed down through every retry, when a scheduled continuation tries again. */
export const SOURCE_DOWN_RETRY_MS = 15 * 60_000;

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

/** One walk of a run: a listing, or the changes of every listing; undefined page: no change search. */
interface Walk {
  id: string;
  fetch(cursor: string | undefined, options: { deadline?: number }): Promise<SourcePage | undefined>;
}

/**
 * Lists page by page, enqueues what needs copying, checkpoints each walk's cursor after every
 * page, and stops cleanly before the deadline or the Admin API reserve. An incremental run lists
 * only what changed since the last successful run (see coverage.ts) and reads the state of only
 * what it lists; a full listing (a reconciliation) then marks unseen assets `deleted-at-source`.
 * Either way the run's manifest is written.
 */
export async function enumerate(
  deps: EnumerateDeps,
  request: EnumerateRequest = {},
): Promise<EnumerateOutcome> {
  const now = deps.now ?? (() => new Date());
  const log = deps.log ?? silentLog;
  let run = await openRun(deps, request.runId, now, request.redrive === true);
  const listings = listingsOf(deps.settings);
  log.info('enumerate: run open', {
    runId: run.runId,
    phase: run.phase,
    coverage: run.coverage?.kind ?? 'full',
    ...(run.coverage?.since ? { since: run.coverage.since } : {}),
    ...(run.coverage?.reason ? { reason: run.coverage.reason } : {}),
  });

  const save = async (changes: Partial<RunRecord>): Promise<void> => {
    const next: RunRecord = { ...run, ...changes, updatedAt: now().toISOString() };
    if (next.updatedAt === run.updatedAt) next.updatedAt = new Date(now().getTime() + 1).toISOString();
    await deps.state.putRun(next, run.updatedAt);
    run = next;
  };
  const pause = async (resumeAt: Date, reason: PauseReason, error?: string): Promise<EnumerateOutcome> => {
    await save({ phase: 'waiting', resumeAt: resumeAt.toISOString() });
    log.info('enumerate: paused', { runId: run.runId, reason, resumeAt: resumeAt.toISOString(), error });
    return { status: 'paused', run, resumeAt, reason, ...(error ? { error } : {}) };
  };
  if (run.listingCapabilities) deps.source.useCapabilities?.(run.listingCapabilities);
  /** What the source learned about the account goes into the run; a change is said once. */
  const learned = (): Partial<RunRecord> => {
    const capabilities = deps.source.capabilities;
    if (!capabilities || sameCapabilities(capabilities, run.listingCapabilities)) return {};
    for (const note of unavailableNotes(capabilities)) log.warn(note, { runId: run.runId });
    return { listingCapabilities: capabilities };
  };

  try {
    if (run.phase !== 'listing' && run.phase !== 'finalizing') {
      await save({ phase: 'listing', resumeAt: undefined });
    }
    const walksOf = (): Walk[] => {
      const changes = run.coverage;
      if (changes?.kind === 'changes' && changes.since && deps.source.listChanges) {
        const since = changes.since;
        const listChanges = deps.source.listChanges.bind(deps.source);
        return [{ id: CHANGES_LISTING, fetch: (cursor, o) => listChanges(listings, since, cursor, o) }];
      }
      return listings.map((listing) => ({
        id: listingId(listing),
        fetch: (cursor, o) => deps.source.listPage(listing, cursor, o),
      }));
    };
    for (const walk of walksOf()) {
      const id = walk.id;
      while (!(run.listings[id]?.done ?? false)) {
        if (request.deadline !== undefined && now().getTime() > request.deadline - DEADLINE_MARGIN_MS) {
          return await pause(now(), 'deadline');
        }
        const budget = deps.source.rateLimit;
        const reserve = budget ? reserveFor(deps.settings.adminReserve, budget.limit) : 0;
        if (budget && budget.remaining <= reserve && budget.resetAt > now()) {
          return await pause(budget.resetAt, 'rate-limit');
        }
        const progress = run.listings[id] ?? { pages: 0, done: false };
        let page;
        try {
          page = await walk.fetch(progress.cursor, {
            ...(request.deadline !== undefined ? { deadline: request.deadline - DEADLINE_MARGIN_MS } : {}),
          });
        } catch (error) {
          const calls = run.counters.adminCalls + callsOf(error);
          if (error instanceof RateLimitedError) {
            await save({ ...learned(), counters: { ...run.counters, adminCalls: calls } });
            return await pause(error.resetAt, 'rate-limit');
          }
          if (error instanceof AdminRetryOutOfTimeError) {
            // A fresh invocation retries it at once.
            await save({ ...learned(), counters: { ...run.counters, adminCalls: calls } });
            return await pause(now(), 'deadline');
          }
          if (error instanceof RetryableError) {
            // The Admin API stayed down through every retry: keep the checkpoint, try again later.
            await save({ ...learned(), counters: { ...run.counters, adminCalls: calls } });
            const message = describeError(error);
            log.error('enumerate: the Admin API is unavailable', { runId: run.runId, error: message });
            return await pause(
              new Date(now().getTime() + SOURCE_DOWN_RETRY_MS),
              'source-unavailable',
              message,
            );
          }
          throw error;
        }
        if (!page) {
          // No change search for this account (Search refused): this run lists everything instead.
          await save({
            ...learned(),
            listings: {},
            coverage: {
              ...(run.coverage ?? { settingsKey: '' }),
              kind: 'full',
              since: undefined,
              lastFullAt: run.startedAt,
              reason: "Cloudinary's Search is not available for this account",
            },
          });
          log.info('enumerate: listing everything', { runId: run.runId, reason: run.coverage?.reason });
          return await enumerate(deps, { ...request, runId: run.runId });
        }
        const report = await enqueueChanged(deps, run, page.assets);
        await writeManifestPart(
          deps.store,
          manifestPartKey(run.runId, id, progress.pages),
          page.assets,
          id === CHANGES_LISTING ? 'changes' : undefined,
        );
        await save({
          ...learned(),
          listings: {
            ...run.listings,
            [id]: { cursor: page.nextCursor, pages: progress.pages + 1, done: !page.nextCursor },
          },
          counters: {
            ...run.counters,
            listed: run.counters.listed + page.assets.length,
            enqueued: run.counters.enqueued + report.enqueued,
            skipped: run.counters.skipped + page.assets.length - report.enqueued,
            adminCalls: run.counters.adminCalls + (page.adminCalls ?? 1),
          },
        });
        deps.onPage?.(run, id, { listed: page.assets.length, ...report });
      }
    }
    if (run.phase !== 'finalizing') await save({ phase: 'finalizing' });
    const finalized = await finalizeListing(
      { store: deps.store, state: deps.state, log },
      {
        runId: run.runId,
        // A listing of changes cannot see deletions: only a full listing marks them.
        listings: run.coverage?.kind === 'changes' ? [] : listings,
        at: now().toISOString(),
        after: run.finalizeCursor,
        mustStop: () =>
          request.deadline !== undefined && now().getTime() > request.deadline - DEADLINE_MARGIN_MS,
        checkpoint: (after, deleted) =>
          save({
            finalizeCursor: after,
            counters: { ...run.counters, deleted: run.counters.deleted + deleted },
          }),
      },
    );
    if (finalized === 'stopped') return await pause(now(), 'deadline');
    await save({
      phase: 'completed',
      finishedAt: now().toISOString(),
      resumeAt: undefined,
      finalizeCursor: undefined,
    });
    log.info('enumerate: run completed', {
      runId: run.runId,
      coverage: run.coverage?.kind ?? 'full',
      counters: run.counters,
    });
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
  const startedAt = at.toISOString();
  const coverage = coverageFor({
    previous: latest,
    settings: deps.settings,
    source: deps.source,
    now: at,
    startedAt,
    redrive,
  });
  const run: RunRecord = {
    runId: newRunId(at),
    phase: 'listing',
    listings: {},
    counters: emptyCounters(),
    startedAt,
    updatedAt: startedAt,
    coverage,
    // What the account's listing gave last time: no call is spent learning it again.
    ...(latest?.listingCapabilities ? { listingCapabilities: latest.listingCapabilities } : {}),
    ...(redrive ? { redrive: true } : {}),
  };
  await deps.state.putRun(run);
  await deps.workers?.start();
  return run;
}

/** Admin calls a failed listing call took (its retries included). */
function callsOf(error: unknown): number {
  const calls = (error as { calls?: unknown } | undefined)?.calls;
  return typeof calls === 'number' && calls > 0 ? calls : 1;
}

async function enqueueChanged(
  deps: EnumerateDeps,
  run: RunRecord,
  assets: SourceAsset[],
): Promise<Omit<PageReport, 'listed'>> {
  const report = { enqueued: 0, upgraded: 0, mismatched: 0 };
  if (assets.length === 0) return report;
  const runId = run.runId;
  // A stale state only enqueues a copy the lease then finds done, or one a later run catches.
  const states = await deps.state.getMany(assets.map(assetIdOf), { consistent: false });
  const options = { redrive: run.redrive === true };
  const changed: SourceAsset[] = [];
  for (const asset of assets) {
    const state = states.get(assetIdOf(asset));
    const check = etagCheckOf(asset, state);
    if (check && asset.etag) {
      // A copy verified by size only meets an etag: confirmed without a download, or copied again.
      const verdict = await deps.state.checkEtag(asset, asset.version, asset.etag);
      if (verdict === 'verified') report.upgraded += 1;
      if (verdict === 'mismatch') report.mismatched += 1;
    }
    if (needsTransfer(asset, state, options)) changed.push(asset);
  }
  // Tags, context and metadata travel in the manifest; the work item stays small.
  await deps.queue.sendBatch(
    changed.map((asset) => ({
      runId,
      asset: { ...asset, tags: undefined, context: undefined, metadata: undefined, unavailable: undefined },
    })),
  );
  report.enqueued = changed.length;
  return report;
}

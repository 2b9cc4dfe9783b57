import { Readable } from 'node:stream';
import { createHash, randomUUID } from 'node:crypto';
import { META } from '../constants.js';
import { dispositionOf, describeError, FatalError, RetryableError, type Disposition } from '../errors.js';
import { assetIdOf, objectKeyFor } from '../keys.js';
import type {
  AssetSource,
  AssetState,
  CopyCheckpoint,
  ObjectStore,
  ReceivedWork,
  SourceAsset,
  StateStore,
  StoredObject,
  Verification,
  WorkQueue,
} from '../types.js';
import { heartbeatIntervalMs, startHeartbeat } from './heartbeat.js';
import { resumingBody } from './resumingBody.js';
import { silentLog, type Log } from './log.js';
import { renameSourceOf } from './rename.js';

export interface ReplicateDeps {
  source: AssetSource;
  store: ObjectStore;
  state: StateStore;
  queue: WorkQueue;
  /** Receives after which a failing message is dead-lettered with its reason. */
  maxReceives: number;
  /** First retry delay; doubles with every receive (capped at 15 minutes). */
  retryBaseSeconds?: number;
  log?: Log;
  now?: () => Date;
  /** Observes bytes as they stream, for progress displays. */
  onBytes?: (count: number) => void;
  /**
   * With a heartbeat: the lease lasts this long and is renewed, with the message's visibility,
   * every third of it while the copy runs, so a dead worker's work comes back within it.
   */
  inFlightSeconds?: number;
}

export type ReplicateResult =
  | {
      outcome: 'replicated';
      bytes: number;
      md5: string;
      verifiedBy: Verification;
      /** A rename: copied inside the store from this state id, nothing downloaded. */
      renamedFrom?: string;
    }
  | { outcome: 'skipped'; reason: 'already-replicated' | 'newer-version-recorded' }
  | { outcome: 'gone' }
  /** Stopped at the invocation's deadline after progress; a new message continues it from `bytes`. */
  | { outcome: 'handed-over'; bytes: number }
  | { outcome: 'retry'; error: string; delaySeconds: number }
  | { outcome: 'dead-lettered'; error: string };

/** S3 user metadata must be ASCII; non-ASCII ids are percent-encoded. */
function headerSafe(value: string): string {
  return /^[\x20-\x7e]*$/u.test(value) ? value : encodeURIComponent(value);
}

/** S3 allows 2 KB of user metadata in all; longer ids are identified by their hash (the manifest has them whole). */
const MAX_PUBLIC_ID_METADATA = 1024;

export function objectMetadata(asset: SourceAsset): Record<string, string> {
  const encodedId = encodeURIComponent(asset.publicId);
  const metadata: Record<string, string> = {
    ...(encodedId.length <= MAX_PUBLIC_ID_METADATA
      ? { [META.publicId]: encodedId }
      : { [META.publicIdSha256]: createHash('sha256').update(asset.publicId, 'utf8').digest('hex') }),
    [META.assetId]: headerSafe(asset.assetId),
    [META.version]: String(asset.version),
    [META.bytes]: String(asset.bytes),
    [META.createdAt]: headerSafe(asset.createdAt),
    [META.resourceType]: asset.resourceType,
    [META.deliveryType]: headerSafe(asset.deliveryType),
  };
  if (asset.format) metadata[META.format] = headerSafe(asset.format);
  // Known before the first byte only when the source gave an etag; the bytes are verified against it.
  if (asset.etag) metadata[META.md5] = asset.etag;
  return metadata;
}

/**
 * Handovers of one copy at most: with 885 s per invocation at 6 MB/s, 5.3 GB each, so 500 reach
 * far past S3's 5 TiB object; only a copy that made progress is handed over.
 */
export const MAX_HANDOVERS = 1000;

/** Delay before looking again at an asset another worker is copying. */
const BUSY_RETRY_SECONDS = 10;
/** Distinct errors kept per failing version, and the length each is cut to. */
const MAX_ERRORS = 5;
const MAX_ERROR_CHARS = 300;

export function retryDelaySeconds(receiveCount: number, baseSeconds: number): number {
  const exponential = baseSeconds * 2 ** Math.max(0, receiveCount - 1);
  const jitter = Math.random() * baseSeconds;
  return Math.min(900, Math.round(exponential + jitter));
}

/**
 * Run counters are reporting: failing to update them must not undo or repeat a copy. Callers add
 * them up per batch, one write per run instead of one per asset.
 */
export async function addRunCounters(
  deps: Pick<ReplicateDeps, 'state' | 'log'>,
  runId: string,
  delta: { replicated?: number; bytes?: number; failed?: number; settled?: number },
): Promise<void> {
  if (!delta.replicated && !delta.failed && !delta.settled) return;
  try {
    await deps.state.addToRunCounters(runId, delta);
  } catch (error) {
    (deps.log ?? silentLog).warn('could not update the run counters', { runId, error: describeError(error) });
  }
}

/**
 * Copies one asset: claims it, streams the original through MD5 and byte checks into the store,
 * and records it replicated only when every byte matched. Failures are retried with backoff and
 * dead-lettered with their reason after `maxReceives`; a vanished asset is marked and acknowledged.
 * Fatal errors (credentials, missing bucket or table) are thrown.
 */
export async function replicateWork(
  deps: ReplicateDeps,
  work: ReceivedWork,
  options: { signal?: AbortSignal; leaseMs?: number } = {},
): Promise<ReplicateResult> {
  const log = deps.log ?? silentLog;
  const now = deps.now ?? (() => new Date());
  const { asset, runId } = work.item;
  const id = assetIdOf(asset);
  const objectKey = objectKeyFor(asset);
  const owner = `${work.messageId}:${randomUUID()}`;
  const inFlight = deps.inFlightSeconds;
  const leaseMs = inFlight !== undefined ? inFlight * 1000 : (options.leaseMs ?? 15 * 60_000);

  const lease = await deps.state.acquireLease(asset, asset.version, owner, leaseMs);
  if (lease === 'done') return { outcome: 'skipped', reason: 'already-replicated' };
  if (lease === 'busy') {
    // Another delivery of this asset is copying it right now; look again once it is done.
    // With heartbeats a dead holder's lease lapses within the in-flight time: look again then.
    const delaySeconds =
      inFlight !== undefined
        ? Math.max(1, Math.ceil(inFlight / 3))
        : Math.max(BUSY_RETRY_SECONDS, retryDelaySeconds(work.receiveCount, deps.retryBaseSeconds ?? 30));
    return { outcome: 'retry', error: `${id} is being copied by another worker`, delaySeconds };
  }

  // Stops the download when the upload fails, and the upload when the download fails.
  const abort = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, abort.signal]) : abort.signal;
  const heartbeat =
    inFlight === undefined
      ? undefined
      : startHeartbeat(heartbeatIntervalMs(inFlight), async () => {
          const [renewed] = await Promise.all([
            deps.state.acquireLease(asset, asset.version, owner, leaseMs),
            deps.queue.extendVisibility(work, inFlight).catch((error: unknown) => {
              log.warn('could not extend the visibility of a message in progress', {
                id,
                error: describeError(error),
              });
            }),
          ]);
          // Our lease lapsed (a stalled process) and another worker holds it: let that copy win.
          if (renewed === 'busy')
            abort.abort(new RetryableError(`${id}: the lease was lost to another worker`));
        });
  let started = 0;
  let reached = 0;
  try {
    // Whoever enqueued it (a listing, a notification): a known asset under a new id is a rename.
    const renamed = await copyRenamed(deps, work, id, objectKey, signal, log, now);
    if (renamed) return renamed;
    const { from, saved } = await resumePoint(deps, id, objectKey, asset, log);
    started = reached = from?.bytes ?? 0;
    const finished = await completedEarlier(deps, objectKey, asset, saved, from);
    if (finished) {
      // Completed by an attempt that stopped before recording it: recorded now, nothing fetched.
      const verifiedBy: Verification = asset.etag ? 'md5' : 'size';
      const recorded = await deps.state.recordReplicated(
        replicatedState(
          id,
          asset,
          objectKey,
          runId,
          { bytes: finished.bytes, md5: finished.md5 as string, versionId: finished.versionId },
          verifiedBy,
          now().toISOString(),
        ),
      );
      await dropCheckpoint(deps, id, log);
      if (!recorded) return { outcome: 'skipped', reason: 'newer-version-recorded' };
      return { outcome: 'replicated', bytes: finished.bytes, md5: finished.md5 as string, verifiedBy };
    }
    // A partial copy holding every byte needs nothing more from the source.
    // The source continues after the bytes the store holds (recorded parts, and parts kept locally).
    const held = (from?.bytes ?? 0) + (from?.spilled ?? 0);
    const whole = from !== undefined && held >= asset.bytes && asset.bytes > 0;
    // Bytes are counted as the source hands them on, with no stream of its own in between.
    const body = whole
      ? Readable.from([])
      : resumingBody(deps.source, asset, held, signal, log, deps.onBytes);
    const saveCheckpoint = deps.state.saveCheckpoint?.bind(deps.state);
    // A copy that found no checkpoint and made none has none to drop (one request fewer per asset).
    let checkpointed = saved !== undefined;
    const onCheckpoint = async (checkpoint: CopyCheckpoint) => {
      checkpointed = true;
      await saveCheckpoint?.(id, checkpoint);
      reached = checkpoint.bytes;
    };
    // The store hashes the bytes once and refuses to commit them unless they are what was listed.
    const upload = deps.store.put(objectKey, body, {
      metadata: objectMetadata(asset),
      createdAt: asset.createdAt,
      signal,
      sizeHint: asset.bytes,
      expected: { bytes: asset.bytes > 0 || asset.version > 0 ? asset.bytes : undefined, md5: asset.etag },
      ...(deps.store.resume
        ? {
            resumable: {
              version: asset.version,
              from,
              ...(saveCheckpoint ? { onCheckpoint } : {}),
            },
          }
        : {}),
    });
    const put = await upload.catch((error: unknown) => {
      // The download's own failure (a 404, a cut-off body) says what to do, not the store's view of it.
      const cause: unknown = body.errored ?? error;
      abort.abort(cause);
      throw cause;
    });
    // Without an etag (the resources listing) only the byte count could be checked.
    const verifiedBy: Verification = asset.etag ? 'md5' : 'size';
    const recorded = await deps.state.recordReplicated(
      replicatedState(
        id,
        asset,
        objectKey,
        runId,
        { bytes: put.bytes, md5: put.md5, versionId: put.versionId },
        verifiedBy,
        now().toISOString(),
      ),
    );
    if (checkpointed) await dropCheckpoint(deps, id, log);
    if (!recorded) return { outcome: 'skipped', reason: 'newer-version-recorded' };
    log.debug('replicated', { id, bytes: put.bytes, md5: put.md5, versionId: put.versionId });
    return { outcome: 'replicated', bytes: put.bytes, md5: put.md5, verifiedBy };
  } catch (caught) {
    // A lost lease aborts the copy; its reason says more than the stream's AbortError.
    const error: unknown = abort.signal.aborted ? (abort.signal.reason ?? caught) : caught;
    const message = describeError(error);
    if (options.signal?.aborted && reached > started) {
      const handed = await handOver(deps, work, owner, log).catch((failure: unknown) => {
        log.warn('could not hand a copy over', { id, error: describeError(failure) });
        return false;
      });
      if (handed) return { outcome: 'handed-over', bytes: reached };
    }
    const disposition: Disposition = dispositionOf(error);
    // A copy that will not be continued gives its partial upload back now, not at the lifecycle rule.
    if (disposition !== 'fatal' && (disposition !== 'retry' || work.receiveCount >= deps.maxReceives))
      await discardPartialCopy(deps, id, objectKey, log);
    if (disposition === 'gone') {
      await deps.state.recordFailure({ ...asset, objectKey }, message, owner);
      await deps.state.markDeleted([id], now().toISOString());
      log.info('asset gone at the source', { id });
      return { outcome: 'gone' };
    }
    if (disposition === 'fatal') {
      await deps.state.recordFailure({ ...asset, objectKey }, message, owner).catch(() => undefined);
      throw error instanceof FatalError ? error : new FatalError(message, { cause: error });
    }
    const givingUp = disposition === 'permanent' || work.receiveCount >= deps.maxReceives;
    // Permanent for this asset (refused, restricted); bytes that did not match may match next time.
    const quarantine = disposition === 'permanent';
    const errors = await distinctErrors(deps.state, id, asset, message);
    await deps.state.recordFailure({ ...asset, objectKey }, message, owner, { quarantine, errors });
    if (givingUp) {
      const reason = errors.length > 1 ? `${errors.length} different errors: ${errors.join(' | ')}` : message;
      await deps.queue.deadLetter(work, reason);
      log.warn(quarantine ? 'quarantined asset' : 'gave up on asset', {
        id,
        receiveCount: work.receiveCount,
        error: reason,
      });
      return { outcome: 'dead-lettered', error: reason };
    }
    const delaySeconds = retryDelaySeconds(work.receiveCount, deps.retryBaseSeconds ?? 30);
    log.warn('asset copy failed, will retry', {
      id,
      receiveCount: work.receiveCount,
      delaySeconds,
      error: message,
    });
    return { outcome: 'retry', error: message, delaySeconds };
  } finally {
    await heartbeat?.stop();
  }
}

/**
 * Passes a copy stopped by the invocation's deadline to a next invocation: a new message for the
 * same asset (its receive count starts again, since this one made progress) once the lease is free.
 */
async function handOver(
  deps: Pick<ReplicateDeps, 'queue' | 'state'>,
  work: ReceivedWork,
  owner: string,
  log: Log,
): Promise<boolean> {
  const handovers = (work.item.handovers ?? 0) + 1;
  if (!deps.state.releaseLease || handovers > MAX_HANDOVERS) return false;
  await deps.state.releaseLease(work.item.asset, owner);
  await deps.queue.sendBatch([{ ...work.item, handovers }]);
  log.info('handed a copy over to the next invocation', { publicId: work.item.asset.publicId, handovers });
  return true;
}

/**
 * Where an interrupted copy of this version continues (undefined: from byte 0). A store that can
 * resume checks the saved checkpoint against what it holds; others discard what a dead copy left.
 */
async function resumePoint(
  deps: Pick<ReplicateDeps, 'store' | 'state'>,
  id: string,
  key: string,
  asset: SourceAsset,
  log: Log,
): Promise<{ from?: CopyCheckpoint; saved?: CopyCheckpoint }> {
  if (!deps.store.resume) {
    await discardLeftovers(deps, key, asset.bytes, log);
    return {};
  }
  const saved = await deps.state.getCheckpoint?.(id);
  const from = await deps.store.resume(key, asset.version, saved, asset.bytes);
  if (saved && !from) await dropCheckpoint(deps, id, log);
  if (from)
    log.info('continuing an interrupted copy', {
      id,
      bytes: from.bytes,
      ...(from.spilled ? { keptLocally: from.spilled } : {}),
      of: asset.bytes,
    });
  return { ...(from ? { from } : {}), ...(saved ? { saved } : {}) };
}

/**
 * A checkpoint holding every byte whose upload is gone: the attempt that made it may have completed
 * the object and stopped before recording it. The object there is that copy when it names this
 * version, size and (when the source gives one) MD5.
 */
async function completedEarlier(
  deps: Pick<ReplicateDeps, 'store'>,
  key: string,
  asset: SourceAsset,
  saved: CopyCheckpoint | undefined,
  from: CopyCheckpoint | undefined,
): Promise<StoredObject | undefined> {
  if (from || !saved || saved.version !== asset.version || saved.bytes < asset.bytes) return undefined;
  const found = await deps.store.head(key).catch(() => undefined);
  const matches =
    found !== undefined &&
    found.metadata[META.version] === String(asset.version) &&
    found.bytes === asset.bytes &&
    found.md5 !== undefined &&
    (asset.etag === undefined || found.md5 === asset.etag.toLowerCase());
  return matches ? found : undefined;
}

async function dropCheckpoint(deps: Pick<ReplicateDeps, 'state'>, id: string, log: Log): Promise<void> {
  try {
    await deps.state.dropCheckpoint?.(id);
  } catch (error) {
    // A stale checkpoint is checked against the store before use, so leaving one is harmless.
    log.warn('could not drop a copy checkpoint', { id, error: describeError(error) });
  }
}

/** The state of a copy of `asset` verified and stored under `objectKey`. */
function replicatedState(
  id: string,
  asset: SourceAsset,
  objectKey: string,
  runId: string,
  copy: { bytes: number; md5: string; versionId?: string },
  verifiedBy: Verification,
  at: string,
): AssetState {
  return {
    id,
    resourceType: asset.resourceType,
    deliveryType: asset.deliveryType,
    publicId: asset.publicId,
    assetId: asset.assetId,
    version: asset.version,
    bytes: copy.bytes,
    md5: copy.md5,
    objectKey,
    objectVersionId: copy.versionId,
    status: 'replicated',
    replicatedAt: at,
    lastSeenRun: runId,
    attempts: 0,
    verifiedBy,
  };
}

async function discardPartialCopy(
  deps: Pick<ReplicateDeps, 'store' | 'state'>,
  id: string,
  key: string,
  log: Log,
): Promise<void> {
  await dropCheckpoint(deps, id, log);
  try {
    await deps.store.discardIncomplete?.(key);
  } catch (error) {
    log.warn('could not discard a partial copy', { key, error: describeError(error) });
  }
}

/**
 * A rename (same asset_id, version, size and MD5 as a copy held under another id): the object is
 * copied inside the store, the new id recorded replicated and the old one renamed (its object
 * stays). Undefined when it is no rename or the copy failed in a passing way (then it is downloaded).
 */
async function copyRenamed(
  deps: ReplicateDeps,
  work: ReceivedWork,
  id: string,
  objectKey: string,
  signal: AbortSignal,
  log: Log,
  now: () => Date,
): Promise<ReplicateResult | undefined> {
  const { asset, runId } = work.item;
  if (!deps.store.copy) return undefined;
  const source = await renameSourceOf(deps.state, asset, id);
  if (!source) return undefined;
  let put;
  try {
    put = await deps.store.copy({ key: source.objectKey, versionId: source.objectVersionId }, objectKey, {
      metadata: objectMetadata(asset),
      createdAt: asset.createdAt,
      expected: { bytes: asset.bytes, md5: source.md5 },
      signal,
    });
  } catch (error) {
    if (dispositionOf(error) === 'fatal') throw error;
    log.warn('could not copy a renamed asset inside the store; downloading it', {
      id,
      from: source.id,
      error: describeError(error),
    });
    return undefined;
  }
  const verifiedBy: Verification = asset.etag ? 'md5' : (source.verifiedBy ?? 'size');
  const at = now().toISOString();
  const recorded = await deps.state.recordReplicated(
    replicatedState(
      id,
      asset,
      objectKey,
      runId,
      { bytes: put.bytes, md5: put.md5, versionId: put.versionId },
      verifiedBy,
      at,
    ),
  );
  await deps.state.markRenamed?.(source.id, asset.assetId, id, at);
  if (!recorded) return { outcome: 'skipped', reason: 'newer-version-recorded' };
  log.debug('renamed: copied inside the store', { id, from: source.id, bytes: put.bytes });
  return { outcome: 'replicated', bytes: put.bytes, md5: put.md5, verifiedBy, renamedFrom: source.id };
}

/** Unfinished uploads of this key are a dead copy's leftovers: we hold the lease now. */
async function discardLeftovers(
  deps: Pick<ReplicateDeps, 'store'>,
  key: string,
  bytes: number,
  log: Log,
): Promise<void> {
  if (!deps.store.discardIncomplete) return;
  try {
    const discarded = await deps.store.discardIncomplete(key, bytes);
    if (discarded > 0) log.info('discarded unfinished uploads of an earlier copy', { key, discarded });
  } catch (error) {
    // A tidy-up, not the copy: the bucket's lifecycle rule removes what stays behind.
    log.warn('could not list or discard unfinished uploads', { key, error: describeError(error) });
  }
}

/** The distinct errors of this version so far plus `message`, oldest first, a few and each short. */
async function distinctErrors(
  state: StateStore,
  id: string,
  asset: SourceAsset,
  message: string,
): Promise<string[]> {
  let previous: AssetState | undefined;
  try {
    previous = (await state.getMany([id])).get(id);
  } catch {
    previous = undefined;
  }
  const sameVersion =
    previous !== undefined &&
    (previous.failedVersion === asset.version ||
      (previous.status !== 'replicated' && previous.version === asset.version));
  const cut = (text: string) =>
    text.length > MAX_ERROR_CHARS ? `${text.slice(0, MAX_ERROR_CHARS - 1)}…` : text;
  const errors = sameVersion ? [...(previous?.errors ?? [])] : [];
  const latest = cut(message);
  if (!errors.includes(latest)) errors.push(latest);
  return errors.slice(-MAX_ERRORS);
}

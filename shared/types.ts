import type { Readable } from 'node:stream';

/** Cloudinary resource types; audio counts as `video`. */
export type ResourceType = 'image' | 'video' | 'raw';

/** One listing the enumerator walks: every asset of one resource type in one delivery type. */
export interface Listing {
  resourceType: ResourceType;
  deliveryType: string;
}

/** Identity of an asset at the source. */
export interface AssetRef {
  resourceType: ResourceType;
  deliveryType: string;
  publicId: string;
}

/** One asset as a listing page describes it. */
export interface SourceAsset extends AssetRef {
  assetId: string;
  /** Upload timestamp; a new version means new content. */
  version: number;
  format?: string;
  bytes: number;
  /** MD5 hex of the stored original, when the source tells it. */
  etag?: string;
  createdAt: string;
  tags?: string[];
  context?: Record<string, unknown>;
  metadata?: Record<string, unknown>;
  secureUrl?: string;
  /** What the listing could not give for this asset (`metadata` refused by the Search tier, `etag`). */
  unavailable?: string[];
}

export interface RateLimit {
  limit: number;
  remaining: number;
  resetAt: Date;
}

export interface SourcePage {
  assets: SourceAsset[];
  nextCursor?: string;
  rateLimit?: RateLimit;
  /** Admin API calls this page took (retries and refusals included); 1 when absent. */
  adminCalls?: number;
}

/**
 * What an account's listing APIs give, learned from Cloudinary's answers (Search tiers, Search
 * disabled). Remembered in the run record, so later pages, invocations and runs do not ask again.
 */
export interface ListingCapabilities {
  /** The listing in use: Search, or the resources listing (configured, or because Search is not available). */
  api: 'search' | 'resources';
  /** Search is not available for this account (the listing fell back to the resources listing). */
  searchUnavailable?: boolean;
  /** `with_field` values Search refused (a tier the account does not have). */
  refusedFields: string[];
  /** Cloudinary's words for the last refusal, for the run's output. */
  reason?: string;
  /** When this was learned (ISO); asked again after a while, since an account may be upgraded. */
  learnedAt: string;
}

export interface OpenedAsset {
  stream: Readable;
  /** Length announced by the server, when it announced one. */
  length?: number;
}

/** Port: where assets come from (Cloudinary). */
export interface AssetSource {
  /** `deadline` (epoch ms): no retry of a failing call is started that could not end before it. */
  listPage(
    listing: Listing,
    cursor: string | undefined,
    options?: { deadline?: number },
  ): Promise<SourcePage>;
  /** What the source has learned about the account's listing APIs (absent: it learns nothing). */
  readonly capabilities?: ListingCapabilities;
  /** Starts from what an earlier call, invocation or run learned. */
  useCapabilities?(capabilities: ListingCapabilities): void;
  /**
   * One page of the assets of `listings` uploaded or changed (tags, context, metadata, public id)
   * at or after `since` (ISO), in one walk over every listing. Undefined when the account cannot
   * list changes (no Search): the caller lists everything instead.
   */
  listChanges?(
    listings: Listing[],
    since: string,
    cursor: string | undefined,
    options?: { deadline?: number },
  ): Promise<SourcePage | undefined>;
  /** Opens the original (never a derivative) as a stream, from `offset` when given. */
  open(asset: SourceAsset, options?: { signal?: AbortSignal; offset?: number }): Promise<OpenedAsset>;
}

export interface PutOptions {
  metadata: Record<string, string>;
  contentType?: string;
  /** Set on the object's creation time (local stores set the file time). */
  createdAt?: string;
  signal?: AbortSignal;
  /** Expected size, so a store can size multipart parts for the largest assets. */
  sizeHint?: number;
  /**
   * What the bytes must be: the store's own hashing checks them and fails the put before the
   * object becomes visible, so each byte is hashed once.
   */
  expected?: { bytes?: number; md5?: string };
  /**
   * A copy that may stop and continue: `body` starts at `from.bytes` (a checkpoint the store's
   * `resume` validated), and the store reports each durable step so a later attempt continues there.
   */
  resumable?: {
    version: number;
    from?: CopyCheckpoint;
    onCheckpoint?: (checkpoint: CopyCheckpoint) => Promise<void>;
  };
}

/**
 * How far an interrupted copy of one version of an asset got, so the next attempt continues it:
 * the source is read again from `bytes`, nothing before it is fetched or uploaded twice.
 */
export interface CopyCheckpoint {
  key: string;
  version: number;
  /** Bytes kept: the source continues from this offset. */
  bytes: number;
  /** MD5 state of those bytes (hash-wasm `save()`, base64), when the store cannot re-read them cheaply. */
  md5State?: string;
  /** S3: the multipart upload kept open, its part size and the ETags of parts 1..n (all whole). */
  uploadId?: string;
  partSize?: number;
  parts?: string[];
  /**
   * Bytes after `bytes` an earlier attempt received and the store kept on this machine (never
   * saved in the state store): the store reads them back first, the source continues after them.
   */
  spilled?: number;
}

export interface PutResult {
  key: string;
  versionId?: string;
  bytes: number;
  md5: string;
}

export interface StoredObject {
  key: string;
  bytes: number;
  /** MD5 hex recorded in the object's metadata. */
  md5?: string;
  metadata: Record<string, string>;
  versionId?: string;
  /** The store's own change token (S3 ETag, local mtime+size); compare, never interpret. */
  etag?: string;
  lastModified?: Date;
  storageClass?: string;
}

/** Port: where copies go (S3 bucket or a local folder). */
export interface ObjectStore {
  /**
   * Streams `body` to `key`. The object becomes visible only if the body ends without error:
   * a stream that fails (a checksum mismatch, a reset) leaves no object behind.
   */
  put(key: string, body: Readable, options: PutOptions): Promise<PutResult>;
  head(key: string): Promise<StoredObject | undefined>;
  list(prefix: string): AsyncIterable<StoredObject>;
  get(key: string, range?: { start: number; end?: number }): Promise<Readable>;
  /** A folder store: the file's path inside the folder (`_unsafe/<sha256>` for names that cannot be paths). */
  localPathOf?(key: string): string;
  /**
   * Discards unfinished uploads to `key` left by a copy that died (kill -9, a lost Lambda), so
   * none stays open; returns how many. `bytes` (the object's size) lets a store skip the look when
   * it never uploads so small an object in parts. Stores without partial uploads need not implement it.
   */
  discardIncomplete?(key: string, bytes?: number): Promise<number>;
  /**
   * Resumable stores: the part of an interrupted copy of `version` that can be kept (`saved` is the
   * state store's checkpoint, if any), checked against what the store holds; undefined to start
   * over. Leftovers of other versions, or that do not check, are discarded.
   */
  resume?(
    key: string,
    version: number,
    saved?: CopyCheckpoint,
    /** The asset's size: with no checkpoint, an object one request stores left nothing to discard. */
    size?: number,
  ): Promise<CopyCheckpoint | undefined>;
  /**
   * Copies an object inside the store (a rename: no download), with new metadata; fails unless the
   * copy has `expected.bytes` bytes. The result's md5 is the source's recorded MD5.
   */
  copy?(from: { key: string; versionId?: string }, key: string, options: CopyOptions): Promise<PutResult>;
}

export interface CopyOptions {
  metadata: Record<string, string>;
  createdAt?: string;
  expected: { bytes: number; md5: string };
  signal?: AbortSignal;
}

/**
 * `failed`: retried by the next run. `quarantined`: failed permanently (403, 400, too large, a
 * restricted type); retried only when its version or size changes, or on an explicit redrive.
 */
export type AssetStatus = 'replicated' | 'failed' | 'quarantined' | 'deleted-at-source' | 'renamed';

/** How a copy's bytes were checked: MD5 against Cloudinary's etag, or only their count. */
export type Verification = 'md5' | 'size';

export interface AssetState extends AssetRef {
  /** State key: `<resource_type>/<type>/<public_id>`. */
  id: string;
  assetId?: string;
  version: number;
  bytes: number;
  md5?: string;
  objectKey: string;
  objectVersionId?: string;
  status: AssetStatus;
  replicatedAt?: string;
  lastSeenRun?: string;
  deletedAt?: string;
  attempts: number;
  lastError?: string;
  /** A newer version whose copy failed while `version` still describes the copy we hold. */
  failedVersion?: number;
  /** How the copy was verified; absent on states recorded before this was kept. */
  verifiedBy?: Verification;
  /** The version and size that failed permanently beside a copy we hold; not retried until they change. */
  quarantinedVersion?: number;
  quarantinedBytes?: number;
  /** The distinct errors of the failing version, oldest first (a few, each cut short). */
  errors?: string[];
  /** Status `renamed`: the state id the asset now lives under (its object here stays). */
  renamedTo?: string;
}

/** How a failure is recorded besides its last error. */
export interface FailureDetails {
  /** A permanent failure: quarantine the version instead of retrying it every run. */
  quarantine?: boolean;
  /** The distinct errors so far, to keep beside the last one. */
  errors?: string[];
}

export type RunPhase = 'listing' | 'waiting' | 'finalizing' | 'completed' | 'failed';

export interface RunCounters {
  listed: number;
  enqueued: number;
  skipped: number;
  replicated: number;
  failed: number;
  deleted: number;
  bytes: number;
  adminCalls: number;
  /**
   * Messages of this run that reached an end (copied, found copied, gone or given up), whoever
   * handled them; the run's copies are done when it reaches `enqueued`.
   */
  settled: number;
}

export interface ListingProgress {
  cursor?: string;
  pages: number;
  done: boolean;
}

export interface RunRecord {
  runId: string;
  phase: RunPhase;
  /** Keyed by `<resource_type>/<type>`. */
  listings: Record<string, ListingProgress>;
  counters: RunCounters;
  startedAt: string;
  updatedAt: string;
  finishedAt?: string;
  /** When a paused run should continue (rate-limit reset or deadline). */
  resumeAt?: string;
  /** Where the scan of asset states stopped when finalizing paused (a state id). */
  finalizeCursor?: string;
  error?: string;
  /** What the account's listing gave in this run (Search tier, fallback); the next run starts from it. */
  listingCapabilities?: ListingCapabilities;
  /** This run retries quarantined assets too (an explicit redrive). */
  redrive?: boolean;
  /** What the run lists: only the changes since a time, or everything (a reconciliation). */
  coverage?: RunCoverage;
}

/** What a run lists, and what the next run needs to list only what changed after it. */
export interface RunCoverage {
  /** `changes`: what changed since `since` (Search); `full`: the complete listing (finds deletions). */
  kind: 'changes' | 'full';
  /** ISO time the changes are listed from (the last successful run's start minus an overlap). */
  since?: string;
  /** Start of the last completed full listing (this run's own start for a full one). */
  lastFullAt?: string;
  /** The settings the listing depends on; a run under other settings lists everything. */
  settingsKey: string;
  /** Why a full listing (first run, failed run, changed settings, schedule, no Search). */
  reason?: string;
}

/** Port: what has been copied (DynamoDB table or a local database). */
export interface StateStore {
  /**
   * `consistent: false` allows an eventually consistent read (half the price on DynamoDB) where a
   * conditional write guards the outcome anyway (the enumerator's diff: the lease decides).
   */
  getMany(ids: string[], options?: { consistent?: boolean }): Promise<Map<string, AssetState>>;
  /**
   * Records a replicated asset. Conditional: a state holding a newer version is never
   * overwritten; returns false when the stored version is newer.
   */
  recordReplicated(state: AssetState): Promise<boolean>;
  /**
   * Claims the right to copy `version` of an asset for `ttlMs`, so two deliveries of one message
   * never upload twice. 'done' when that version (or a newer one) is already replicated, 'busy'
   * when another owner holds an unexpired lease.
   */
  acquireLease(
    ref: AssetRef,
    version: number,
    owner: string,
    ttlMs: number,
  ): Promise<'acquired' | 'done' | 'busy'>;
  /** Records a failed attempt (and frees `owner`'s lease) without touching a replicated older copy. */
  recordFailure(
    ref: AssetRef & { version: number; bytes: number; objectKey: string },
    error: string,
    owner?: string,
    details?: FailureDetails,
  ): Promise<void>;
  markDeleted(ids: string[], at: string): Promise<void>;
  /** The states recorded with this Cloudinary asset_id (a renamed asset has several). */
  findByAssetId?(assetId: string): Promise<AssetState[]>;
  /**
   * Records `id` as renamed to `newId` (its copy stays); only while its state still holds `assetId`
   * and is not already renamed.
   */
  markRenamed?(id: string, assetId: string, newId: string, at: string): Promise<void>;
  /**
   * Checks a replicated copy of `version` against an etag the source now gives: 'verified' when the
   * recorded MD5 matches (the state becomes md5-verified, nothing is downloaded), 'mismatch' when it
   * differs (the state becomes `failed` so the next copy replaces it), 'unchanged' when there is no
   * replicated copy of that version.
   */
  checkEtag(ref: AssetRef, version: number, etag: string): Promise<'verified' | 'mismatch' | 'unchanged'>;
  /**
   * Every asset state once, in an order of the store's choosing that is the same from call to
   * call; `after` (a state id it yielded before) continues an interrupted walk after that state.
   */
  listAssets(options?: { after?: string }): AsyncIterable<AssetState>;
  getRun(runId: string): Promise<RunRecord | undefined>;
  /**
   * Writes the run record; `expectedUpdatedAt` makes the write conditional (optimistic lock,
   * StaleRunError when it fails). Counters only grow: a write raises a counter to the value given
   * but never lowers one, so a checkpoint cannot undo what addToRunCounters added meanwhile.
   */
  putRun(run: RunRecord, expectedUpdatedAt?: string): Promise<void>;
  latestRun(): Promise<RunRecord | undefined>;
  /** Adds to a run's counters atomically (many workers report into one run). */
  addToRunCounters(runId: string, delta: Partial<RunCounters>): Promise<void>;
  /** Copies in progress (stores whose partial copies the object store cannot describe alone). */
  getCheckpoint?(id: string): Promise<CopyCheckpoint | undefined>;
  saveCheckpoint?(id: string, checkpoint: CopyCheckpoint): Promise<void>;
  dropCheckpoint?(id: string): Promise<void>;
  /** Frees `owner`'s lease without recording anything (a copy handed over to a next invocation). */
  releaseLease?(ref: AssetRef, owner: string): Promise<void>;
}

/** A message on the work queue: one asset to copy. */
export interface WorkItem {
  runId: string;
  asset: SourceAsset;
  /** Invocations that have handed this copy over so far (a copy longer than one invocation). */
  handovers?: number;
}

export interface ReceivedWork {
  item: WorkItem;
  receiptHandle: string;
  receiveCount: number;
  messageId: string;
}

/**
 * Port: turns the queue's consumer on and off, so nothing polls an empty queue all day. On AWS it
 * is the replicate function's event source mapping; locally a drain loop always runs (a no-op).
 */
export interface WorkerSwitch {
  /** Workers consume the queue from now on; messages sent while they were off are picked up. */
  start(): Promise<void>;
  /** Workers stop, unless the queue holds messages (checked again after stopping); true when stopped. */
  stopIfIdle(): Promise<boolean>;
}

/** Port: the fan-out between enumerate and replicate. */
export interface WorkQueue {
  sendBatch(items: WorkItem[]): Promise<void>;
  receive(max: number, waitSeconds?: number): Promise<ReceivedWork[]>;
  ack(work: ReceivedWork): Promise<void>;
  /** Makes a failed message visible again after `delaySeconds`. */
  retryLater(work: ReceivedWork, delaySeconds: number): Promise<void>;
  /**
   * Keeps a message being worked on hidden for `seconds` more from now: the heartbeat of a copy
   * in progress, so a worker that dies gives its messages back within `seconds`.
   */
  extendVisibility(work: ReceivedWork, seconds: number): Promise<void>;
  /** Gives up on a message: moves it to the dead-letter queue with the reason, removes it here. */
  deadLetter(work: ReceivedWork, reason: string): Promise<void>;
}

import type { Library } from './Library.js';
import type { Webhooks } from './Webhooks.js';

/** Cloudinary resource types; audio counts as `video`. */
export type ResourceType = 'image' | 'video' | 'raw';

/** What `Library.add` takes: one asset as its uploader would describe it. */
export interface AssetSpec {
  publicId: string;
  resourceType: ResourceType;
  /** Delivery type; `upload` when absent. */
  type?: string;
  /** File format; leave undefined for `raw` (the public id holds the extension). */
  format?: string;
  bytes: number;
  /** First upload time; the library's clock when absent. */
  createdAt?: Date;
  tags?: string[];
  context?: Record<string, string>;
  metadata?: Record<string, unknown>;
  /** Dynamic-folder mode's folder; the public id's folder part when absent. */
  assetFolder?: string;
  displayName?: string;
  width?: number;
  height?: number;
}

/** One upload of an asset: what `versions=true` lists and what delivery can still serve. */
export interface VersionRecord {
  readonly version: number;
  readonly version_id: string;
  readonly format: string | undefined;
  readonly bytes: number;
  /** ISO date of that upload. */
  readonly uploaded_at: string;
}

/** The bytes of one version of one asset: enough to regenerate them. */
export interface ContentRef {
  readonly asset_id: string;
  readonly version: number;
  readonly bytes: number;
}

/**
 * One asset as the double stores it: an immutable snapshot (mutations make a new one).
 * Field names follow Cloudinary's JSON so tests can compare them with API answers directly.
 */
export interface DoubleAsset extends ContentRef {
  readonly public_id: string;
  readonly format: string | undefined;
  readonly version_id: string;
  readonly resource_type: ResourceType;
  readonly type: string;
  /** ISO date (seconds precision) of the first upload; an overwrite keeps it (unconfirmed, see Library). */
  readonly created_at: string;
  /** ISO date of the latest upload; `version` is the same instant in unix seconds. */
  readonly uploaded_at: string;
  /** ISO date of the latest change of any kind. */
  readonly updated_at: string;
  readonly width: number | undefined;
  readonly height: number | undefined;
  readonly duration: number | undefined;
  readonly tags: readonly string[];
  readonly context: Readonly<Record<string, string>>;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly asset_folder: string;
  readonly display_name: string;
  readonly tags_updated_at: string | undefined;
  readonly context_updated_at: string | undefined;
  readonly metadata_updated_at: string | undefined;
  readonly public_id_updated_at: string | undefined;
  /** Every upload of this asset, oldest first; the last one is the current version. */
  readonly versions: readonly VersionRecord[];
}

/** Routes a fault can target. `admin` is every Admin API call except search. */
export type FaultRoute = 'admin' | 'search' | 'delivery' | 'download' | 'upload';

export type FaultEffect =
  /** Wait this long before answering. */
  | { kind: 'latency'; ms: number }
  /** Send the body no faster than this. */
  | { kind: 'bandwidth'; bytesPerSecond: number }
  /** Answer with this status instead (500 with a JSON error, others with an HTML page like a load balancer). */
  | { kind: 'status'; status: number }
  /** Send the headers and `afterBytes` bytes of body, then reset the connection (RST). */
  | { kind: 'reset'; afterBytes?: number }
  /** Announce the full Content-Length, send `afterBytes` (default: half) and close the connection cleanly. */
  | { kind: 'short'; afterBytes?: number }
  /** Same length, but the byte at content offset `at` (default: the middle) is flipped: the MD5 no longer matches. */
  | { kind: 'corrupt'; at?: number }
  /** Never answer; `close()` ends the request. */
  | { kind: 'hang' };

export type FaultSpec = FaultEffect & {
  route: FaultRoute | readonly FaultRoute[];
  /** Only requests for this public id (details, delivery, download). */
  publicId?: string;
  /** How many requests the fault hits before it retires; unlimited when absent. */
  times?: number;
  /** Share (0..1) of matching requests hit, chosen deterministically from the seed; 1 when absent. */
  share?: number;
};

/** A fault as it stands: how often it hit so far. */
export interface ActiveFault {
  readonly id: number;
  readonly spec: FaultSpec;
  readonly hits: number;
  /** Requests it matched (hit or spared by `share`). */
  readonly seen: number;
}

export interface Faults {
  add(spec: FaultSpec): ActiveFault;
  remove(fault: ActiveFault | number): void;
  clear(): void;
  list(): ActiveFault[];
}

export interface DoubleClock {
  now(): Date;
  advance(ms: number): void;
  set(date: Date): void;
}

export interface DoubleCounters {
  /** Authenticated Admin API calls, searches included, whatever their answer (injected faults and 420s too). */
  adminCalls: number;
  /** The searches among `adminCalls`. */
  searchCalls: number;
  /** Requests on the delivery host (`/<cloud>/<rt>/<type>/...`), whatever their answer. */
  deliveryRequests: number;
  /** Body bytes written by delivery answers. */
  deliveryBytes: number;
  /** Requests to the download API (`/v1_1/<cloud>/<rt>/download`), whatever their answer. */
  downloadApiRequests: number;
  /** Body bytes written by download API answers. */
  downloadBytes: number;
  /** Admin calls refused with 420/429. */
  rateLimited: number;
  /** POSTs to the Upload API (each chunk counts), whatever their answer. */
  uploadRequests: number;
  reset(): void;
}

export type RequestKind = 'admin' | 'search' | 'delivery' | 'download' | 'upload' | 'other';

/** One request as the double saw it; never holds the secret, signatures or Authorization. */
export interface RequestLogEntry {
  at: Date;
  method: string;
  /** URL path without the query; `s--…--` signature components are masked. */
  path: string;
  /** 0 while unanswered (or when the connection ended before an answer). */
  status: number;
  kind: RequestKind;
  publicId?: string;
  /** Body bytes written. */
  bytes?: number;
  /** Admin query or search body parameters that shape paging (max_results, next_cursor, prefix, ...). */
  params?: Record<string, string>;
}

/** How the double answers once the hourly budget is spent. */
export interface RateLimitBehaviour {
  /** 420 (documented) or 429 (newer behaviour). */
  status: 420 | 429;
  /** Whether the X-FeatureRateLimit-* headers come with the refusal (unconfirmed upstream). */
  headersWhenExceeded: boolean;
}

export interface DoubleOptions {
  cloudName?: string;
  apiKey?: string;
  apiSecret?: string;
  /** How notifications are signed: sha1 (Cloudinary's default) or sha256. */
  signatureAlgorithm?: 'sha1' | 'sha256';
  library?: Library;
  /** Admin API budget per clock hour, searches included; 500 when absent. */
  rateLimitPerHour?: number;
  rateLimitStatus?: 420 | 429;
  /** Send the rate-limit headers with the 420/429 too; true when absent. */
  rateLimitHeadersWhenExceeded?: boolean;
  /** Base clock; `clock.advance`/`clock.set` shift it. Real time when absent. */
  now?: () => Date;
  /** 0 (any free port) when absent. */
  port?: number;
  /** Seeds the fault shares; the library's seed when absent. */
  seed?: number | string;
  /**
   * What delivery does with `v<N>` naming no version of the asset. `not-found` (default) answers 404,
   * which catches callers that build URLs without the listed version (the SDK writes `v1`); `current`
   * serves the current version, as Cloudinary's origin does.
   */
  unknownVersion?: 'not-found' | 'current';
  /**
   * Simulate the CDN's stale unversioned copies: an unversioned URL keeps serving the version that was
   * current when it was first requested. False when absent.
   */
  staleUnversioned?: boolean;
  /** Oldest entries are dropped past this many; 200,000 when absent. */
  requestLogLimit?: number;
  /**
   * Which Search the account has (see SearchMode); `tier2` (everything) when absent. Settable later
   * with `setSearchMode`.
   */
  search?: SearchMode;
  /**
   * Search's eventual consistency (CLOUDINARY.md, "Search": results are eventually consistent, in
   * seconds): assets uploaded or changed less than this many ms ago are missing from Search. 0 when absent.
   */
  searchLagMs?: number;
  /** Per-request and per-plan upload size limits; Cloudinary's free plan when absent (see FREE_PLAN_LIMITS). */
  uploadLimits?: Partial<UploadLimits>;
  /**
   * What an upload with `overwrite=false` answers for an existing asset: the existing asset unchanged,
   * flagged `existing: true` (true, the default) or not flagged (false). The docs say the upload
   * "returns immediately"; whether the flag comes is not stated, so clients must cope with both.
   */
  flagExistingUploads?: boolean;
}

/** How large an upload may be: one request, and one file per resource type (the plan's limit). */
export interface UploadLimits {
  maxRequestBytes: number;
  maxFileBytes: Record<ResourceType, number>;
}

/**
 * What the account's Search API answers. Cloudinary splits Search into Tier 1 (every account up to
 * 10 million assets) and Tier 2 (on request, Advanced plans and up); some descriptions list
 * `with_field: metadata` as Tier 2, but what a Tier 1 account gets for it is not documented
 * (/work/shared/CLOUDINARY.md, "Search tiers"). Assumptions, one mode per reading:
 * - `tier2`: every `with_field` value is honoured.
 * - `tier1`: a Tier 2 `with_field` value (see TIER2_WITH_FIELDS) is refused with HTTP 400
 *   `{"error":{"message":"with_field metadata requires Search Tier 2 (Advanced plans and up)"}}`,
 *   metered like any other 400 after login.
 * - `tier1-silent`: the other reading: a Tier 2 value is ignored and the answer simply lacks it.
 * - `none`: no Search at all (over 10 million assets, or disabled): every search is refused with
 *   HTTP 403 `{"error":{"message":"Search API is not enabled for this account. Contact support to enable it."}}`.
 */
export type SearchMode = 'tier2' | 'tier1' | 'tier1-silent' | 'none';

export interface CloudinaryDouble {
  readonly port: number;
  /** `http://127.0.0.1:PORT`: Admin API, download API and delivery all answer here. */
  readonly origin: string;
  readonly cloudName: string;
  readonly apiKey: string;
  readonly apiSecret: string;
  /** `cloudinary://KEY:SECRET@CLOUD?upload_prefix=<origin>&secure=false&cname=127.0.0.1:PORT` */
  readonly cloudinaryUrl: string;
  /** Per-call SDK options that reach this double whatever the global config says. */
  readonly sdkOptions: {
    cloud_name: string;
    api_key: string;
    api_secret: string;
    upload_prefix: string;
    secure: false;
    cname: string;
  };
  readonly library: Library;
  readonly clock: DoubleClock;
  readonly faults: Faults;
  /** Triggers, and changes that POST signed notifications to them (see Webhooks). */
  readonly webhooks: Webhooks;
  readonly counters: DoubleCounters;
  readonly requestLog: RequestLogEntry[];
  readonly rateLimit: RateLimitBehaviour;
  setRateLimit(perHour: number): void;
  /** Switches what Search answers (see SearchMode). */
  setSearchMode(mode: SearchMode): void;
  /** Budget left in the current clock hour. */
  rateLimitRemaining(): number;
  /** The versioned delivery URL of an asset (what listings put in `secure_url`). */
  deliveryUrl(asset: DoubleAsset): string;
  close(): Promise<void>;
}

import http from 'node:http';
import https from 'node:https';
import {
  DEFAULT_SETTINGS,
  reserveFor,
  type AdminReserve,
  type CloudinaryCredentials,
  type ListingApi,
} from '../config.js';
import { silentLog, type Log } from '../engine/log.js';
import {
  AssetGoneError,
  FatalError,
  PermanentAssetError,
  RateLimitedError,
  ReplicatorError,
  RetryableError,
} from '../errors.js';
import type {
  AssetSource,
  Listing,
  ListingCapabilities,
  OpenedAsset,
  RateLimit,
  SourceAsset,
  SourcePage,
} from '../types.js';
import {
  AdminApiDownError,
  AdminRetryOutOfTimeError,
  adminBackoffMs,
  DEFAULT_ADMIN_RETRY,
  type AdminRetryPolicy,
} from './adminRetry.js';
import { fetchOriginal, needsDownloadApi, RestrictedDeliveryError } from './download.js';
import { nextHour, normalizeSdkError, statusOf } from './errors.js';
import {
  CAPABILITIES_TTL_MS,
  decodeCursor,
  encodeCursor,
  initialCapabilities,
  refusedFieldsOf,
  SEARCH_WITH_FIELDS,
  SearchRefusedError,
} from './listingCapabilities.js';
import { CHANGE_TIME_READINGS, changesExpression } from './changesExpression.js';
import { callOptions, loadCloudinarySdk } from './sdk.js';

export interface CloudinarySourceOptions {
  credentials: CloudinaryCredentials;
  listingApi?: ListingApi;
  pageSize?: number;
  /** Deadline for one Admin API call (the SDK's own timeout is not enforced). */
  adminTimeoutMs?: number;
  /** A download that delivers no byte for this long is abandoned. */
  idleTimeoutMs?: number;
  /** Lifetime of signed download links. */
  signedUrlTtlSeconds?: number;
  now?: () => Date;
  /** Called after every Admin API call with what the response said about the budget. */
  onAdminCall?: (rateLimit: RateLimit | undefined) => void;
  /** How passing Admin API failures are retried (tests inject the sleep). */
  adminRetry?: Partial<AdminRetryPolicy>;
  /** Admin API calls kept unused in each hour: retries stop there too. */
  adminReserve?: AdminReserve;
  log?: Log;
}

interface SdkItem {
  asset_id?: string;
  public_id: string;
  format?: string;
  version?: number;
  resource_type: string;
  type: string;
  created_at?: string;
  bytes?: number;
  etag?: string;
  tags?: string[];
  context?: Record<string, unknown>;
  metadata?: Record<string, unknown>;
  secure_url?: string;
}

interface SdkPage {
  resources?: SdkItem[];
  next_cursor?: string;
  rate_limit_allowed?: number;
  rate_limit_remaining?: number;
  rate_limit_reset_at?: Date;
}

/** Admin calls one listing page spent, and the deadline its retries must respect. */
interface CallCount {
  calls: number;
  deadline?: number;
}

/** The AssetSource port on Cloudinary: Admin API listings and original downloads. */
export class CloudinarySource implements AssetSource {
  private readonly credentials: CloudinaryCredentials;
  private readonly listingApi: ListingApi;
  private readonly pageSize: number;
  private readonly adminTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly signedUrlTtlSeconds: number;
  private readonly now: () => Date;
  private readonly onAdminCall?: (rateLimit: RateLimit | undefined) => void;
  private lastRateLimit?: RateLimit;
  private readonly retry: AdminRetryPolicy;
  private readonly reserveFor: (limit: number) => number;
  private readonly log: Log;
  private learned: ListingCapabilities;
  /** Which reading of the change-time fields Search takes (CHANGE_TIME_READINGS). */
  private changeReading = 0;

  constructor(options: CloudinarySourceOptions) {
    this.credentials = options.credentials;
    this.listingApi = options.listingApi ?? 'search';
    this.pageSize = options.pageSize ?? 500;
    this.adminTimeoutMs = options.adminTimeoutMs ?? 30_000;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
    this.signedUrlTtlSeconds = options.signedUrlTtlSeconds ?? 3600;
    this.now = options.now ?? (() => new Date());
    this.onAdminCall = options.onAdminCall;
    this.retry = { ...DEFAULT_ADMIN_RETRY, ...options.adminRetry };
    const reserve = options.adminReserve ?? DEFAULT_SETTINGS.adminReserve;
    this.reserveFor = (limit) => reserveFor(reserve, limit);
    this.log = options.log ?? silentLog;
    this.learned = initialCapabilities(this.listingApi, this.now());
  }

  /** The budget as the last Admin answer reported it. */
  get rateLimit(): RateLimit | undefined {
    return this.lastRateLimit;
  }

  /** What this account's listing APIs gave so far. */
  get capabilities(): ListingCapabilities {
    return this.learned;
  }

  useCapabilities(capabilities: ListingCapabilities): void {
    // A configured resources listing stays one; an upgrade is noticed once what was learned expires.
    if (this.listingApi === 'resources') return;
    // A resources listing that was configured, not learned, says nothing about Search.
    if (capabilities.api === 'resources' && !capabilities.searchUnavailable) return;
    if (this.now().getTime() - Date.parse(capabilities.learnedAt) > CAPABILITIES_TTL_MS) return;
    this.learned = { ...capabilities, refusedFields: [...capabilities.refusedFields] };
  }

  async listPage(
    listing: Listing,
    cursor: string | undefined,
    options: { deadline?: number } = {},
  ): Promise<SourcePage> {
    const stored = decodeCursor(cursor, this.listingApi);
    const counted: CallCount = { calls: 0, deadline: options.deadline };
    if (this.learned.api === 'search' && stored.api === 'search') {
      const page = await this.searchPage(
        `listing ${listing.resourceType}/${listing.deliveryType}`,
        () => `resource_type:${listing.resourceType} AND type:${listing.deliveryType}`,
        stored.cursor,
        counted,
        (item) => item.type === listing.deliveryType && item.resource_type === listing.resourceType,
      );
      if (page) return page;
    }
    // A Search cursor cannot continue a resources walk: that listing starts again from its first page.
    return this.resourcesPage(listing, stored.api === 'resources' ? stored.cursor : undefined, counted);
  }

  /** One Search page, learning from refusals; undefined when Search turns out not to be available. */
  /**
   * The assets of `listings` uploaded or changed since `since`, in one Search walk. Undefined when
   * Search cannot say (not available, or it refuses every reading of the change-time fields).
   */
  async listChanges(
    listings: Listing[],
    since: string,
    cursor: string | undefined,
    options: { deadline?: number } = {},
  ): Promise<SourcePage | undefined> {
    const stored = decodeCursor(cursor, 'search');
    if (this.learned.api !== 'search' || stored.api !== 'search') return undefined;
    const counted: CallCount = { calls: 0, deadline: options.deadline };
    const wanted = new Set(listings.map((l) => `${l.resourceType}/${l.deliveryType}`));
    return this.searchPage(
      'listing changes',
      () => changesExpression(listings, since, CHANGE_TIME_READINGS[this.changeReading] ?? []),
      stored.cursor,
      counted,
      (item) => wanted.has(`${item.resource_type}/${item.type}`),
      () => {
        // The docs are silent on which change-time fields Search takes: the next reading, if any.
        this.changeReading += 1;
        return this.changeReading < CHANGE_TIME_READINGS.length;
      },
    );
  }

  /**
   * One Search page, learning from refusals; undefined when Search turns out not to be available
   * (or, with `refusedExpression`, when it refuses every form of the expression).
   */
  private async searchPage(
    what: string,
    expression: () => string,
    cursor: string | undefined,
    counted: CallCount,
    keep: (item: SdkItem) => boolean,
    refusedExpression?: () => boolean,
  ): Promise<SourcePage | undefined> {
    for (;;) {
      const withField = SEARCH_WITH_FIELDS.filter((f) => !this.learned.refusedFields.includes(f));
      try {
        const page = await this.adminCall<SdkPage>(
          what,
          (sdk, auth) =>
            // The SDK's typings say `params: string`; its code posts the object as JSON.
            (sdk.api.search as unknown as (params: object, options: object) => Promise<unknown>)(
              {
                expression: expression(),
                sort_by: [{ public_id: 'asc' }],
                max_results: this.pageSize,
                ...(withField.length > 0 ? { with_field: withField } : {}),
                ...(cursor ? { next_cursor: cursor } : {}),
              },
              auth,
            ),
          counted,
          searchRefusal,
        );
        const unavailable =
          this.learned.refusedFields.length > 0 ? [...this.learned.refusedFields] : undefined;
        return this.toPage(page, 'search', counted, unavailable, keep);
      } catch (error) {
        if (!(error instanceof SearchRefusedError)) throw error;
        const fields = refusedFieldsOf(error, withField);
        const reason = `HTTP ${error.status}: ${error.detail}`;
        if (fields.length > 0) {
          // A field the tier does not give is dropped for the account, not for this call only.
          this.learned = {
            ...this.learned,
            refusedFields: [...this.learned.refusedFields, ...fields],
            reason,
            learnedAt: this.now().toISOString(),
          };
          continue;
        }
        if (refusedExpression) {
          if (refusedExpression()) continue;
          this.log.warn('Search refused every form of the change listing: listing everything', { reason });
          return undefined;
        }
        this.learned = {
          ...this.learned,
          api: 'resources',
          searchUnavailable: true,
          reason,
          learnedAt: this.now().toISOString(),
        };
        return undefined;
      }
    }
  }

  private async resourcesPage(
    listing: Listing,
    cursor: string | undefined,
    counted: CallCount,
  ): Promise<SourcePage> {
    const what = `listing ${listing.resourceType}/${listing.deliveryType}`;
    const page = await this.adminCall<SdkPage>(
      what,
      (sdk, auth) =>
        sdk.api.resources({
          ...auth,
          resource_type: listing.resourceType,
          type: listing.deliveryType,
          max_results: this.pageSize,
          tags: true,
          context: true,
          metadata: true,
          ...(cursor ? { next_cursor: cursor } : {}),
        }),
      counted,
    );
    // The resources listing has no etag: copies are verified by their size only.
    return this.toPage(
      page,
      'resources',
      counted,
      ['etag'],
      (item) => item.type === listing.deliveryType && item.resource_type === listing.resourceType,
    );
  }

  private toPage(
    page: SdkPage,
    api: ListingApi,
    counted: CallCount,
    unavailable: string[] | undefined,
    keep: (item: SdkItem) => boolean,
  ): SourcePage {
    const assets = (page.resources ?? [])
      // Search may return other delivery types when the expression is broad; keep the listing's own.
      .filter(keep)
      .map((item) => toSourceAsset(item, unavailable));
    return {
      assets,
      nextCursor: encodeCursor(api, page.next_cursor || undefined),
      rateLimit: this.lastRateLimit,
      adminCalls: counted.calls,
    };
  }

  /**
   * One Admin API call under a deadline, retried with backoff and jitter while it fails in a passing
   * way (5xx, resets, timeouts) and the hourly budget has calls above the reserve. A rate limit is
   * not retried here: the enumerator pauses until the reset.
   */
  private async adminCall<T extends object>(
    what: string,
    call: (
      sdk: Awaited<ReturnType<typeof loadCloudinarySdk>>,
      auth: Record<string, unknown>,
    ) => Promise<unknown>,
    counted: CallCount = { calls: 0 },
    refusal?: (status: number, message: string) => ReplicatorError | undefined,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      counted.calls += 1;
      try {
        return await this.adminCallOnce<T>(what, call, refusal);
      } catch (error) {
        if (!(error instanceof RetryableError) || error instanceof RateLimitedError) throw error;
        if (attempt >= this.retry.tries) throw new AdminApiDownError(what, attempt, error.message);
        const delay = adminBackoffMs(this.retry, attempt);
        if (
          counted.deadline !== undefined &&
          this.now().getTime() + delay + this.adminTimeoutMs > counted.deadline
        ) {
          throw new AdminRetryOutOfTimeError(what, error.message);
        }
        const budget = this.lastRateLimit;
        if (budget && budget.remaining <= this.reserveFor(budget.limit) && budget.resetAt > this.now()) {
          // Retrying would eat into the reserve: wait for the next window instead.
          throw new RateLimitedError(
            `${what}: ${error.message}; the Admin API budget left for retries is spent until ${budget.resetAt.toISOString()}`,
            budget.resetAt,
          );
        }
        this.log.warn('Admin API call failed, retrying', { what, attempt, error: error.message });
        await this.retry.sleep(delay);
      }
    }
  }

  private async adminCallOnce<T extends object>(
    what: string,
    call: (
      sdk: Awaited<ReturnType<typeof loadCloudinarySdk>>,
      auth: Record<string, unknown>,
    ) => Promise<unknown>,
    refusal?: (status: number, message: string) => ReplicatorError | undefined,
  ): Promise<T> {
    const sdk = await loadCloudinarySdk(this.credentials);
    // A socket of this call only: destroying it at the deadline aborts the request, so a silent
    // server can never keep the process alive.
    const agent = this.credentials.apiOrigin.startsWith('http:') ? new http.Agent() : new https.Agent();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(new RetryableError(`${what}: Cloudinary did not answer within ${this.adminTimeoutMs} ms`)),
        this.adminTimeoutMs,
      );
    });
    try {
      const result = (await Promise.race([
        call(sdk, { ...callOptions(this.credentials), agent }),
        deadline,
      ])) as T & SdkPage;
      this.lastRateLimit = readRateLimit(result) ?? this.lastRateLimit;
      this.onAdminCall?.(readRateLimit(result));
      return result;
    } catch (error) {
      if (error instanceof ReplicatorError) throw error;
      const refused = refusal?.(...statusOf(error));
      if (refused) throw refused;
      const normalized = normalizeSdkError(
        error,
        what,
        () => this.lastRateLimit?.resetAt ?? nextHour(this.now()),
      );
      if (normalized instanceof RateLimitedError) {
        this.lastRateLimit = {
          limit: this.lastRateLimit?.limit ?? 0,
          remaining: 0,
          resetAt: normalized.resetAt,
        };
        this.onAdminCall?.(this.lastRateLimit);
      }
      // A listing that Cloudinary refuses or cannot find is not a per-asset problem.
      if (normalized instanceof PermanentAssetError || normalized instanceof AssetGoneError) {
        throw new FatalError(normalized.message);
      }
      throw normalized;
    } finally {
      clearTimeout(timer);
      agent.destroy();
    }
  }

  /** URL of the untransformed original; signed through the download API where needed. */
  async originalUrl(asset: SourceAsset, viaDownloadApi = false): Promise<string> {
    const { deliveryOrigin, cloudName } = this.credentials;
    const publicType = asset.deliveryType !== 'private' && asset.deliveryType !== 'authenticated';
    if (publicType && !viaDownloadApi && !needsDownloadApi(asset.publicId)) {
      const ext = asset.format && asset.resourceType !== 'raw' ? `.${asset.format}` : '';
      const path = asset.publicId.split('/').map(encodeURIComponent).join('/');
      // Always versioned: after an overwrite the CDN may serve a stale unversioned copy.
      return `${deliveryOrigin}/${cloudName}/${asset.resourceType}/${encodeURIComponent(asset.deliveryType)}/v${asset.version}/${path}${ext}`;
    }
    const sdk = await loadCloudinarySdk(this.credentials);
    const expiresAt = Math.floor(this.now().getTime() / 1000) + this.signedUrlTtlSeconds;
    return sdk.utils.private_download_url(
      asset.publicId,
      asset.resourceType === 'raw' ? '' : (asset.format ?? ''),
      {
        ...callOptions(this.credentials),
        resource_type: asset.resourceType,
        type: asset.deliveryType,
        expires_at: expiresAt,
      },
    );
  }

  async open(
    asset: SourceAsset,
    options: { signal?: AbortSignal; offset?: number } = {},
  ): Promise<OpenedAsset> {
    try {
      return await fetchOriginal(asset, await this.originalUrl(asset), options, this.idleTimeoutMs);
    } catch (error) {
      // Restricted media types (PDF, ZIP on some accounts) are refused by the CDN but served by the API.
      if (error instanceof RestrictedDeliveryError) {
        return fetchOriginal(asset, await this.originalUrl(asset, true), options, this.idleTimeoutMs);
      }
      throw error;
    }
  }
}

function readRateLimit(page: SdkPage): RateLimit | undefined {
  if (page.rate_limit_remaining === undefined || !(page.rate_limit_reset_at instanceof Date))
    return undefined;
  return {
    limit: page.rate_limit_allowed ?? 0,
    remaining: page.rate_limit_remaining,
    resetAt: page.rate_limit_reset_at,
  };
}

/** Search's 4xx answers other than credentials and rate limits: a tier or availability refusal. */
function searchRefusal(status: number, message: string): ReplicatorError | undefined {
  return status === 400 || status === 403 || status === 404
    ? new SearchRefusedError(status, message)
    : undefined;
}

/** Search gives context flat, the resources listing under `custom`: the manifest keeps one shape. */
function flatContext(context: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  const custom = context?.custom;
  if (context && Object.keys(context).length === 1 && typeof custom === 'object' && custom !== null) {
    return custom as Record<string, unknown>;
  }
  return context;
}

function toSourceAsset(item: SdkItem, unavailable: string[] | undefined): SourceAsset {
  return {
    assetId: item.asset_id ?? '',
    publicId: item.public_id,
    resourceType: item.resource_type as SourceAsset['resourceType'],
    deliveryType: item.type,
    version: item.version ?? 0,
    format: item.format || undefined,
    bytes: item.bytes ?? 0,
    etag:
      typeof item.etag === 'string' && /^[0-9a-f]{32}$/iu.test(item.etag)
        ? item.etag.toLowerCase()
        : undefined,
    createdAt: item.created_at ?? '',
    tags: item.tags,
    context: flatContext(item.context),
    metadata: item.metadata,
    secureUrl: item.secure_url,
    ...(unavailable ? { unavailable } : {}),
  };
}

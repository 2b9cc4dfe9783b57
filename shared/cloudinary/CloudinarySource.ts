import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { Transform, type Readable } from 'node:stream';
import type { CloudinaryCredentials, ListingApi } from '../config.js';
import {
  AssetGoneError,
  FatalError,
  PermanentAssetError,
  RateLimitedError,
  ReplicatorError,
  RetryableError,
} from '../errors.js';
import type { AssetSource, Listing, OpenedAsset, RateLimit, SourceAsset, SourcePage } from '../types.js';
import { nextHour, normalizeSdkError } from './errors.js';
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

const agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };

/** Ids whose path form an HTTP stack may rewrite; those are fetched through the download API. */
function needsDownloadApi(publicId: string): boolean {
  return publicId.split('/').some((s) => s === '' || s === '.' || s === '..') || /[%?#\\]/u.test(publicId);
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

  constructor(options: CloudinarySourceOptions) {
    this.credentials = options.credentials;
    this.listingApi = options.listingApi ?? 'search';
    this.pageSize = options.pageSize ?? 500;
    this.adminTimeoutMs = options.adminTimeoutMs ?? 30_000;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
    this.signedUrlTtlSeconds = options.signedUrlTtlSeconds ?? 3600;
    this.now = options.now ?? (() => new Date());
    this.onAdminCall = options.onAdminCall;
  }

  /** The budget as the last Admin answer reported it. */
  get rateLimit(): RateLimit | undefined {
    return this.lastRateLimit;
  }

  async listPage(listing: Listing, cursor: string | undefined): Promise<SourcePage> {
    const what = `listing ${listing.resourceType}/${listing.deliveryType}`;
    const page = await this.adminCall<SdkPage>(what, (sdk, auth) =>
      this.listingApi === 'search'
        ? // The SDK's typings say `params: string`; its code posts the object as JSON.
          (sdk.api.search as unknown as (params: object, options: object) => Promise<unknown>)(
            {
              expression: `resource_type:${listing.resourceType} AND type:${listing.deliveryType}`,
              sort_by: [{ public_id: 'asc' }],
              max_results: this.pageSize,
              with_field: ['tags', 'context', 'metadata'],
              ...(cursor ? { next_cursor: cursor } : {}),
            },
            auth,
          )
        : sdk.api.resources({
            ...auth,
            resource_type: listing.resourceType,
            type: listing.deliveryType,
            max_results: this.pageSize,
            tags: true,
            context: true,
            metadata: true,
            ...(cursor ? { next_cursor: cursor } : {}),
          }),
    );
    const assets = (page.resources ?? [])
      // Search may return other delivery types when the expression is broad; keep the listing's own.
      .filter((item) => item.type === listing.deliveryType && item.resource_type === listing.resourceType)
      .map((item) => toSourceAsset(item));
    return { assets, nextCursor: page.next_cursor || undefined, rateLimit: this.lastRateLimit };
  }

  private async adminCall<T extends object>(
    what: string,
    call: (
      sdk: Awaited<ReturnType<typeof loadCloudinarySdk>>,
      auth: Record<string, unknown>,
    ) => Promise<unknown>,
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
      return await this.fetchOriginal(asset, await this.originalUrl(asset), options);
    } catch (error) {
      // Restricted media types (PDF, ZIP on some accounts) are refused by the CDN but served by the API.
      if (error instanceof RestrictedDeliveryError) {
        return this.fetchOriginal(asset, await this.originalUrl(asset, true), options);
      }
      throw error;
    }
  }

  private fetchOriginal(
    asset: SourceAsset,
    url: string,
    options: { signal?: AbortSignal; offset?: number },
  ): Promise<OpenedAsset> {
    const what = `download of ${asset.resourceType}/${asset.deliveryType}/${asset.publicId} v${asset.version}`;
    const target = new URL(url);
    const client = target.protocol === 'http:' ? http : https;
    const offset = options.offset ?? 0;
    const idleMs = this.idleTimeoutMs;
    return new Promise<OpenedAsset>((resolve, reject) => {
      const request = client.request(
        {
          method: 'GET',
          protocol: target.protocol,
          hostname: target.hostname,
          port: target.port || undefined,
          // The raw path: a URL object would normalise `..` segments away.
          path: url.slice(url.indexOf('/', target.protocol.length + 2)),
          agent: target.protocol === 'http:' ? agents.http : agents.https,
          headers: offset > 0 ? { Range: `bytes=${offset}-` } : {},
          signal: options.signal,
        },
        (response) => {
          clearTimeout(headersTimer);
          const failure = responseError(response, what, url.includes('/download?'), offset);
          if (failure) {
            response.resume();
            reject(failure);
            return;
          }
          const length = Number(response.headers['content-length']);
          resolve({
            stream: watchIdle(response, idleMs, what),
            length: Number.isFinite(length) ? length : undefined,
          });
        },
      );
      const headersTimer = setTimeout(
        () => request.destroy(new RetryableError(`${what}: no answer for ${idleMs} ms`)),
        idleMs,
      );
      request.once('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(headersTimer);
        if (error instanceof ReplicatorError) reject(error);
        else if (error.name === 'AbortError') reject(new RetryableError(`${what}: aborted`));
        else reject(new RetryableError(`${what}: network error [${error.code ?? error.name}]`));
      });
      request.end();
    });
  }
}

/**
 * Passes the body through, failing it when the server sends nothing for `idleMs`. Time spent
 * waiting on a slow consumer (bytes sitting in the buffers) does not count as server silence.
 */
function watchIdle(response: IncomingMessage, idleMs: number, what: string): Readable {
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (watchdog.readableLength > 0 || watchdog.writableLength > 0 || response.isPaused()) arm();
      else response.destroy(new RetryableError(`${what}: no data for ${idleMs} ms`));
    }, idleMs);
  };
  const watchdog = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      arm();
      callback(null, chunk);
    },
    flush(callback) {
      clearTimeout(timer);
      callback();
    },
    destroy(error, callback) {
      clearTimeout(timer);
      response.destroy();
      callback(error);
    },
  });
  response.once('aborted', () =>
    response.destroy(new RetryableError(`${what}: the connection closed before the body was complete`)),
  );
  response.once('error', (error: NodeJS.ErrnoException) =>
    watchdog.destroy(
      error instanceof ReplicatorError
        ? error
        : new RetryableError(`${what}: the body was cut off [${error.code ?? error.message}]`),
    ),
  );
  arm();
  response.pipe(watchdog);
  return watchdog;
}

class RestrictedDeliveryError extends PermanentAssetError {}

function responseError(
  response: IncomingMessage,
  what: string,
  viaDownloadApi: boolean,
  offset: number,
): ReplicatorError | undefined {
  const status = response.statusCode ?? 0;
  if (status === 200 && offset === 0) return undefined;
  if (status === 206 && offset > 0) return undefined;
  if (status === 200 && offset > 0) return new RetryableError(`${what}: the server ignored the byte range`);
  const reason = String(response.headers['x-cld-error'] ?? '').slice(0, 200);
  const detail = reason ? `: ${reason}` : '';
  if (status === 404) return new AssetGoneError(`${what}: HTTP 404${detail}`);
  if ((status === 401 || status === 403) && !viaDownloadApi) {
    return new RestrictedDeliveryError(`${what}: HTTP ${status}${detail}`);
  }
  if (status === 401 || status === 403) {
    return new PermanentAssetError(`${what}: refused by the download API (HTTP ${status}${detail})`);
  }
  if (status === 416) return new RetryableError(`${what}: HTTP 416, the range is past the end`);
  return new RetryableError(`${what}: HTTP ${status}${detail}`);
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

function toSourceAsset(item: SdkItem): SourceAsset {
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
    context: item.context,
    metadata: item.metadata,
    secureUrl: item.secure_url,
  };
}

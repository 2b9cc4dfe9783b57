import { DEFAULT_DELIVERY_TYPES, RESOURCE_TYPES } from './constants.js';
import { ConfigError } from './errors.js';
import type { Listing, ResourceType } from './types.js';

/** Credentials and hosts parsed from `cloudinary://<api_key>:<api_secret>@<cloud_name>?...`. */
export interface CloudinaryCredentials {
  cloudName: string;
  apiKey: string;
  apiSecret: string;
  /** Admin/Upload API origin (`upload_prefix`), e.g. `https://api-eu.cloudinary.com`. */
  apiOrigin: string;
  /** Origin that serves originals: `https://res.cloudinary.com` unless `secure=false&cname=...` say otherwise. */
  deliveryOrigin: string;
}

const URL_HINT =
  'Set CLOUDINARY_URL to cloudinary://<api_key>:<api_secret>@<cloud_name> (Cloudinary console → API Keys).';

export function parseCloudinaryUrl(value: string | undefined): CloudinaryCredentials {
  if (!value || value.trim() === '') throw new ConfigError(`CLOUDINARY_URL is not set. ${URL_HINT}`);
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    throw new ConfigError(`CLOUDINARY_URL is not a valid URL. ${URL_HINT}`);
  }
  if (url.protocol !== 'cloudinary:') {
    throw new ConfigError(`CLOUDINARY_URL must start with cloudinary://. ${URL_HINT}`);
  }
  const apiKey = decodeURIComponent(url.username);
  const apiSecret = decodeURIComponent(url.password);
  const cloudName = url.hostname;
  if (!apiKey || !apiSecret || !cloudName) {
    throw new ConfigError(`CLOUDINARY_URL lacks the API key, the API secret or the cloud name. ${URL_HINT}`);
  }
  const params = url.searchParams;
  const apiOrigin = trimSlash(params.get('upload_prefix') ?? 'https://api.cloudinary.com');
  const cname = params.get('cname');
  const secure = params.get('secure') !== 'false';
  const deliveryOrigin =
    !secure && cname
      ? `http://${cname}`
      : `https://${params.get('secure_distribution') ?? 'res.cloudinary.com'}`;
  for (const origin of [apiOrigin, deliveryOrigin]) {
    if (!/^https?:\/\/[^/]+$/u.test(origin)) {
      throw new ConfigError(
        `CLOUDINARY_URL has an invalid host setting (${origin}); use a plain http(s)://host[:port].`,
      );
    }
  }
  return { cloudName, apiKey, apiSecret, apiOrigin, deliveryOrigin: trimSlash(deliveryOrigin) };
}

function trimSlash(s: string): string {
  return s.replace(/\/+$/u, '');
}

export type ListingApi = 'search' | 'resources';

/** Admin API calls kept unused each hour: a number of calls, or a share of the account's limit (`'2%'`). */
export type AdminReserve = number | `${number}%`;

/** Calls the reserve keeps back from an hourly `limit`; a share keeps at least one call of a known limit. */
export function reserveFor(reserve: AdminReserve, limit: number): number {
  if (typeof reserve === 'number') return reserve;
  if (!(limit > 0)) return 0;
  return Math.max(1, Math.ceil((limit * Number.parseFloat(reserve)) / 100));
}

/** Settings of the engine, shared by the Lambda handlers and the CLIs. */
export interface EngineSettings {
  resourceTypes: ResourceType[];
  deliveryTypes: string[];
  /** Admin API calls left unused in each hourly window (a share of the account's limit by default). */
  adminReserve: AdminReserve;
  listingApi: ListingApi;
  /** Assets per listing page (Cloudinary's maximum is 500, one Admin call per page). */
  pageSize: number;
  /** Bytes per multipart part. */
  partSize: number;
  uploadQueueSize: number;
  /** Receives after which a failing message goes to the dead-letter queue with its reason. */
  maxReceives: number;
  /** Deadline for one Admin API call. */
  adminTimeoutMs: number;
  /** Tries of an Admin API call that fails in a passing way (5xx, reset, timeout) before the run stops. */
  adminRetries: number;
  /** A download that delivers no byte for this long is abandoned. */
  idleTimeoutMs: number;
  /** First retry delay of a failed copy; doubles with every receive. */
  retryBaseSeconds: number;
  /** Assets one worker invocation copies at once. */
  workerConcurrency: number;
  /**
   * How long a message being copied stays hidden, and its asset leased, without a heartbeat: a
   * worker that dies (kill -9, a lost Lambda) gives its work back within this time.
   */
  inFlightSeconds: number;
  /**
   * Days between full listings (reconciliations: deletions, anything the incremental listings
   * missed); the runs between list only what changed. 0: every run lists everything.
   */
  reconcileEveryDays: number;
}

export const DEFAULT_SETTINGS: EngineSettings = {
  resourceTypes: [...RESOURCE_TYPES],
  deliveryTypes: [...DEFAULT_DELIVERY_TYPES],
  adminReserve: '2%',
  listingApi: 'search',
  pageSize: 500,
  partSize: 8 * 1024 * 1024,
  uploadQueueSize: 4,
  maxReceives: 5,
  adminTimeoutMs: 30_000,
  adminRetries: 8,
  idleTimeoutMs: 60_000,
  retryBaseSeconds: 30,
  workerConcurrency: 4,
  inFlightSeconds: 60,
  reconcileEveryDays: 7,
};

function list(name: string, raw: string | undefined): string[] | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  const items = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0) throw new ConfigError(`${name} is empty; give a comma-separated list or unset it.`);
  return items;
}

function integer(name: string, raw: string | undefined, min: number, max: number): number | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max}, got "${raw}".`);
  }
  return n;
}

/** `ADMIN_RESERVE`: `N` calls, or `N%` of the account's hourly limit. */
function adminReserve(raw: string | undefined): AdminReserve | undefined {
  const text = raw?.trim();
  if (!text) return undefined;
  const share = /^(\d{1,2}(?:\.\d+)?)%$/u.exec(text);
  if (share && Number(share[1]) <= 50) return `${Number(share[1])}%`;
  const calls = Number(text);
  if (share || !Number.isInteger(calls) || calls < 0 || calls > 10_000) {
    throw new ConfigError(
      `ADMIN_RESERVE must be a number of calls from 0 to 10000, or a share of the hourly limit from 0% to 50% (like 2%), got "${raw}".`,
    );
  }
  return calls;
}

/** Reads engine settings from the environment; every bad value is named with what to do. */
export function settingsFromEnv(env: NodeJS.ProcessEnv = process.env): EngineSettings {
  const resourceTypes = list('RESOURCE_TYPES', env.RESOURCE_TYPES) ?? DEFAULT_SETTINGS.resourceTypes;
  for (const rt of resourceTypes) {
    if (!(RESOURCE_TYPES as readonly string[]).includes(rt)) {
      throw new ConfigError(`RESOURCE_TYPES has "${rt}"; allowed: ${RESOURCE_TYPES.join(', ')}.`);
    }
  }
  const deliveryTypes = list('DELIVERY_TYPES', env.DELIVERY_TYPES) ?? DEFAULT_SETTINGS.deliveryTypes;
  for (const t of deliveryTypes) {
    if (!/^[a-z_]+$/u.test(t))
      throw new ConfigError(`DELIVERY_TYPES has "${t}"; use names like upload, private.`);
  }
  const listingApi = (env.LISTING_API?.trim() || DEFAULT_SETTINGS.listingApi) as ListingApi;
  if (listingApi !== 'search' && listingApi !== 'resources') {
    throw new ConfigError(`LISTING_API must be "search" or "resources", got "${env.LISTING_API}".`);
  }
  const partMb = integer('PART_SIZE_MB', env.PART_SIZE_MB, 5, 5120);
  return {
    resourceTypes: resourceTypes as ResourceType[],
    deliveryTypes,
    listingApi,
    pageSize: integer('LISTING_PAGE_SIZE', env.LISTING_PAGE_SIZE, 1, 500) ?? DEFAULT_SETTINGS.pageSize,
    adminReserve: adminReserve(env.ADMIN_RESERVE) ?? DEFAULT_SETTINGS.adminReserve,
    partSize: partMb ? partMb * 1024 * 1024 : DEFAULT_SETTINGS.partSize,
    uploadQueueSize:
      integer('UPLOAD_QUEUE_SIZE', env.UPLOAD_QUEUE_SIZE, 1, 64) ?? DEFAULT_SETTINGS.uploadQueueSize,
    maxReceives: integer('MAX_RECEIVES', env.MAX_RECEIVES, 1, 1000) ?? DEFAULT_SETTINGS.maxReceives,
    adminTimeoutMs:
      integer('ADMIN_TIMEOUT_MS', env.ADMIN_TIMEOUT_MS, 100, 600_000) ?? DEFAULT_SETTINGS.adminTimeoutMs,
    adminRetries: integer('ADMIN_RETRIES', env.ADMIN_RETRIES, 1, 20) ?? DEFAULT_SETTINGS.adminRetries,
    idleTimeoutMs:
      integer('IDLE_TIMEOUT_MS', env.IDLE_TIMEOUT_MS, 100, 600_000) ?? DEFAULT_SETTINGS.idleTimeoutMs,
    retryBaseSeconds:
      integer('RETRY_BASE_SECONDS', env.RETRY_BASE_SECONDS, 0, 900) ?? DEFAULT_SETTINGS.retryBaseSeconds,
    workerConcurrency:
      integer('WORKER_CONCURRENCY', env.WORKER_CONCURRENCY, 1, 64) ?? DEFAULT_SETTINGS.workerConcurrency,
    inFlightSeconds:
      integer('IN_FLIGHT_SECONDS', env.IN_FLIGHT_SECONDS, 3, 43_200) ?? DEFAULT_SETTINGS.inFlightSeconds,
    reconcileEveryDays:
      integer('RECONCILE_EVERY_DAYS', env.RECONCILE_EVERY_DAYS, 0, 365) ??
      DEFAULT_SETTINGS.reconcileEveryDays,
  };
}

export function listingsOf(settings: Pick<EngineSettings, 'resourceTypes' | 'deliveryTypes'>): Listing[] {
  return settings.resourceTypes.flatMap((resourceType) =>
    settings.deliveryTypes.map((deliveryType) => ({ resourceType, deliveryType })),
  );
}

export function listingId(listing: Listing): string {
  return `${listing.resourceType}/${listing.deliveryType}`;
}

/** Reads a required setting, failing with a message that names it. */
export function required(env: NodeJS.ProcessEnv, name: string, hint: string): string {
  const value = env[name]?.trim();
  if (!value) throw new ConfigError(`${name} is not set. ${hint}`);
  return value;
}

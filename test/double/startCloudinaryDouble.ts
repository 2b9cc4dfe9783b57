import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AdminApi, parseResourceType } from './AdminApi.js';
import { FREE_PLAN_LIMITS, UploadApi } from './UploadApi.js';
import { BadRequest, DoubleHttpError, NotFound, Unauthorized } from './errors.js';
import { Webhooks } from './Webhooks.js';
import { searchAsTiered, SEARCH_MODES } from './searchTiers.js';
import { FaultBoard } from './FaultBoard.js';
import type { FaultPlan } from './FaultBoard.js';
import { Library, RESOURCE_TYPES } from './Library.js';
import { RateLimiter } from './RateLimiter.js';
import type { RateLimitVerdict } from './RateLimiter.js';
import { deliveryUrl } from './render.js';
import type { DeliveryBase } from './render.js';
import { verifyApiSignature, verifyDeliverySignature } from './signatures.js';
import { SettableClock } from './SettableClock.js';
import { rateLimitMessageDate } from './time.js';
import { mimeTypeOf, parseRange, sleep, writeBody } from './transport.js';
import type {
  CloudinaryDouble,
  ContentRef,
  DoubleAsset,
  DoubleCounters,
  DoubleOptions,
  FaultRoute,
  FaultSpec,
  RateLimitBehaviour,
  RequestLogEntry,
  ResourceType,
  SearchMode,
} from './types.js';

const OPTION_NAMES = new Set<string>([
  'cloudName',
  'apiKey',
  'apiSecret',
  'signatureAlgorithm',
  'library',
  'rateLimitPerHour',
  'rateLimitStatus',
  'rateLimitHeadersWhenExceeded',
  'now',
  'port',
  'seed',
  'unknownVersion',
  'staleUnversioned',
  'requestLogLimit',
  'search',
  'uploadLimits',
  'flagExistingUploads',
  'searchLagMs',
]);
const MAX_REQUEST_BODY_BYTES = 1024 * 1024;
const LOGGED_PARAMS = [
  'max_results',
  'next_cursor',
  'prefix',
  'start_at',
  'direction',
  'tags',
  'context',
  'metadata',
  'fields',
  'versions',
  'expression',
  'sort_by',
  'with_field',
];

/** Everything one request handler needs to know about the exchange. */
interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  query: URLSearchParams;
  entry: RequestLogEntry;
}

function makeCounters(): DoubleCounters {
  const counters: DoubleCounters = {
    adminCalls: 0,
    searchCalls: 0,
    deliveryRequests: 0,
    deliveryBytes: 0,
    downloadApiRequests: 0,
    downloadBytes: 0,
    rateLimited: 0,
    uploadRequests: 0,
    reset() {
      counters.uploadRequests = 0;
      counters.adminCalls = 0;
      counters.searchCalls = 0;
      counters.deliveryRequests = 0;
      counters.deliveryBytes = 0;
      counters.downloadApiRequests = 0;
      counters.downloadBytes = 0;
      counters.rateLimited = 0;
    },
  };
  return counters;
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new BadRequest('Malformed percent-encoding in the URL');
  }
}

/** The path as logged: signatures masked. */
function maskedPath(rawPath: string): string {
  return rawPath.replace(/(^|\/)s--[^/]*--(?=\/|$)/g, '$1s--***--');
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_REQUEST_BODY_BYTES) reject(new BadRequest('Request body too large'));
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function loggedParams(source: Record<string, unknown>): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  for (const name of LOGGED_PARAMS) {
    const value = source[name];
    if (value !== undefined && value !== null)
      params[name] = typeof value === 'string' ? value : JSON.stringify(value);
  }
  return Object.keys(params).length > 0 ? params : undefined;
}

function validateOptions(options: DoubleOptions): void {
  for (const name of Object.keys(options)) {
    if (!OPTION_NAMES.has(name)) throw new Error(`startCloudinaryDouble: unknown option "${name}"`);
  }
  if (options.search !== undefined && !SEARCH_MODES.includes(options.search)) {
    throw new Error(`startCloudinaryDouble: search must be one of ${SEARCH_MODES.join(', ')}`);
  }
  const perHour = options.rateLimitPerHour;
  if (perHour !== undefined && !(Number.isInteger(perHour) && perHour >= 0)) {
    throw new Error('startCloudinaryDouble: rateLimitPerHour must be an integer >= 0');
  }
}

/**
 * Starts the double on 127.0.0.1. See index.ts for how a test points the real SDK at it.
 */
export async function startCloudinaryDouble(options: DoubleOptions = {}): Promise<CloudinaryDouble> {
  validateOptions(options);
  const library = options.library ?? new Library(options.seed ?? 1);
  const clock = new SettableClock(options.now);
  const now = (): Date => clock.now();
  library.useClock(now);
  const cloudName = options.cloudName ?? 'double-cloud';
  const apiKey = options.apiKey ?? '614335564976464';
  const apiSecret = options.apiSecret ?? `dbl${randomBytes(12).toString('hex')}`;
  const faults = new FaultBoard(String(options.seed ?? library.seed));
  // Faults for a double that a child process starts itself (`npm run demo` in a test): JSON FaultSpec[].
  const fromEnv = process.env.CLOUDINARY_DOUBLE_FAULTS;
  if (fromEnv) for (const spec of JSON.parse(fromEnv) as FaultSpec[]) faults.add(spec);
  const limiter = new RateLimiter(now, options.rateLimitPerHour ?? 500);
  const rateLimit: RateLimitBehaviour = {
    status: options.rateLimitStatus ?? 420,
    headersWhenExceeded: options.rateLimitHeadersWhenExceeded ?? true,
  };
  const unknownVersion = options.unknownVersion ?? 'not-found';
  const requestLogLimit = options.requestLogLimit ?? 200_000;
  const staleVersions = new Map<string, number>();
  const counters = makeCounters();
  const requestLog: RequestLogEntry[] = [];
  const closing = new AbortController();
  const signal = closing.signal;
  const base: DeliveryBase = { origin: '', cloudName };
  const admin = new AdminApi(library, base, now);
  const webhooks = new Webhooks(library, base, now, apiSecret, options.signatureAlgorithm);
  admin.searchLagMs = options.searchLagMs ?? 0;
  let searchMode: SearchMode = options.search ?? 'tier2';
  const uploads = new UploadApi({
    library,
    base,
    apiKey,
    apiSecret,
    now,
    limits: {
      maxRequestBytes: options.uploadLimits?.maxRequestBytes ?? FREE_PLAN_LIMITS.maxRequestBytes,
      maxFileBytes: { ...FREE_PLAN_LIMITS.maxFileBytes, ...options.uploadLimits?.maxFileBytes },
    },
    flagExisting: options.flagExistingUploads ?? true,
  });

  const log = (entry: RequestLogEntry): void => {
    requestLog.push(entry);
    if (requestLog.length > requestLogLimit * 1.1) requestLog.splice(0, requestLog.length - requestLogLimit);
  };

  const writeHead = (ex: Exchange, status: number, headers: OutgoingHttpHeaders): void => {
    ex.res.writeHead(status, headers);
    ex.entry.status = status;
  };

  const sendBytes = async (
    ex: Exchange,
    status: number,
    headers: OutgoingHttpHeaders,
    body: Buffer,
    plan?: FaultPlan,
  ): Promise<number> => {
    writeHead(ex, status, { 'Content-Length': body.length, ...headers });
    if (ex.req.method === 'HEAD') {
      ex.res.end();
      return 0;
    }
    if (plan === undefined) {
      ex.res.end(body);
      return body.length;
    }
    return writeBody(ex.res, [body], {
      plan,
      length: body.length,
      contentStart: 0,
      contentLength: body.length,
      signal,
    });
  };

  const sendJson = async (
    ex: Exchange,
    status: number,
    body: unknown,
    headers: OutgoingHttpHeaders = {},
    plan?: FaultPlan,
  ): Promise<void> => {
    const bytes = Buffer.from(JSON.stringify(body), 'utf8');
    ex.entry.bytes = await sendBytes(
      ex,
      status,
      { 'Content-Type': 'application/json; charset=utf-8', ...headers },
      bytes,
      plan,
    );
  };

  const sendError = async (
    ex: Exchange,
    error: DoubleHttpError,
    extra: OutgoingHttpHeaders = {},
  ): Promise<void> => {
    const headers = { ...error.headers, ...extra };
    if (ex.entry.kind === 'delivery') {
      const body = Buffer.from(`${error.status} ${error.message}\n`, 'utf8');
      ex.entry.bytes = await sendBytes(
        ex,
        error.status,
        { 'Content-Type': 'text/plain; charset=utf-8', 'X-Cld-Error': error.cldError, ...headers },
        body,
      );
      return;
    }
    const cld = ex.entry.kind === 'download' ? { 'X-Cld-Error': error.cldError } : {};
    await sendJson(ex, error.status, { error: { message: error.message } }, { ...cld, ...headers });
  };

  /** An injected 5xx: JSON for 500 (Cloudinary's own), an HTML page for the rest (a load balancer's). */
  const sendFaultStatus = async (ex: Exchange, status: number): Promise<void> => {
    if (status === 500 && ex.entry.kind !== 'delivery') {
      await sendJson(ex, 500, { error: { message: 'General Error (injected by the double)' } });
      return;
    }
    const body = Buffer.from(`<html><body><h1>${status} injected by the double</h1></body></html>\n`, 'utf8');
    ex.entry.bytes = await sendBytes(
      ex,
      status,
      { 'Content-Type': 'text/html; charset=utf-8', 'X-Cld-Error': `injected ${status}` },
      body,
    );
  };

  /** Applies the request-level faults; false when the request must not be answered further. */
  const applyPreFaults = async (ex: Exchange, plan: FaultPlan): Promise<boolean> => {
    if (plan.hang) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          signal.removeEventListener('abort', done);
          ex.res.off('close', done);
          resolve();
        };
        signal.addEventListener('abort', done);
        ex.res.on('close', done);
      });
      return false;
    }
    await sleep(plan.latencyMs, signal);
    if (signal.aborted || ex.res.destroyed) return false;
    if (plan.status !== undefined) {
      await sendFaultStatus(ex, plan.status);
      return false;
    }
    return true;
  };

  const rateLimitHeaders = (verdict: RateLimitVerdict): OutgoingHttpHeaders => ({
    'X-FeatureRateLimit-Limit': String(verdict.limit),
    'X-FeatureRateLimit-Remaining': String(verdict.remaining),
    'X-FeatureRateLimit-Reset': verdict.resetAt.toUTCString(),
  });

  const authorize = (req: IncomingMessage): Unauthorized | undefined => {
    const header = req.headers.authorization ?? '';
    const match = /^Basic\s+(\S+)$/i.exec(header);
    if (!match) return new Unauthorized('Must supply api_key (HTTP Basic authentication)');
    const decoded = Buffer.from(match[1] ?? '', 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const key = colon < 0 ? decoded : decoded.slice(0, colon);
    const secret = colon < 0 ? '' : decoded.slice(colon + 1);
    // Keys are numeric; anything else (a swapped-in secret, say) is not echoed.
    if (!safeEqual(key, apiKey))
      return new Unauthorized(/^\d{1,24}$/.test(key) ? `Unknown API key ${key}` : 'Unknown API key');
    if (!safeEqual(secret, apiSecret)) return new Unauthorized('Invalid api_secret for this API key');
    return undefined;
  };

  type AdminCall =
    | { action: 'ping' }
    | { action: 'list'; resourceType: ResourceType; type: string | undefined }
    | { action: 'details'; resourceType: ResourceType; type: string; publicId: string }
    | { action: 'by-asset-id'; assetId: string }
    | { action: 'delete'; resourceType: ResourceType; type: string }
    | { action: 'search' };

  const handleAdmin = async (ex: Exchange, call: AdminCall): Promise<void> => {
    const route: FaultRoute = call.action === 'search' ? 'search' : 'admin';
    ex.entry.kind = route;
    if (call.action === 'details') ex.entry.publicId = call.publicId;
    counters.adminCalls += 1;
    if (route === 'search') counters.searchCalls += 1;

    let searchBody: Record<string, unknown> = {};
    if (call.action === 'search') {
      const text = ex.req.method === 'POST' ? await readBody(ex.req) : '';
      try {
        searchBody =
          text === '' ? Object.fromEntries(ex.query) : (JSON.parse(text) as Record<string, unknown>);
      } catch {
        return sendError(ex, new BadRequest('The search body is not valid JSON'));
      }
      ex.entry.params = loggedParams(searchBody);
    } else if (call.action === 'delete') {
      // The SDK's api.delete_resources sends `public_ids[]` form-encoded in the DELETE body.
      for (const [name, value] of new URLSearchParams(await readBody(ex.req))) ex.query.append(name, value);
    } else {
      ex.entry.params = loggedParams(Object.fromEntries(ex.query));
    }

    const plan = faults.plan(route, call.action === 'details' ? call.publicId : undefined);
    if (!(await applyPreFaults(ex, plan))) return;

    const verdict = limiter.take();
    if (!verdict.allowed) {
      counters.rateLimited += 1;
      const message = `Rate Limit Exceeded. Limit of ${verdict.limit} api operations reached. Try again on ${rateLimitMessageDate(verdict.resetAt)}`;
      const headers = rateLimit.headersWhenExceeded ? rateLimitHeaders(verdict) : {};
      return sendJson(ex, rateLimit.status, { error: { message } }, headers);
    }
    const headers = rateLimitHeaders(verdict);
    let body: unknown;
    try {
      switch (call.action) {
        case 'ping':
          body = { status: 'ok' };
          break;
        case 'list':
          body = admin.list(call.resourceType, call.type, ex.query);
          break;
        case 'details':
          body = await admin.details(call.resourceType, call.type, call.publicId, ex.query);
          break;
        case 'by-asset-id': {
          const asset = library.getByAssetId(call.assetId);
          if (asset === undefined) throw new NotFound(`Resource not found - ${call.assetId}`);
          ex.entry.publicId = asset.public_id;
          body = await admin.details(asset.resource_type, asset.type, asset.public_id, ex.query);
          break;
        }
        case 'search':
          body = await admin.search(searchAsTiered(searchBody, searchMode));
          break;
        case 'delete':
          body = admin.deleteResources(call.resourceType, call.type, ex.query.getAll('public_ids[]'));
          break;
      }
    } catch (error) {
      if (error instanceof DoubleHttpError) return sendError(ex, error, headers);
      throw error;
    }
    await sendJson(ex, 200, body, headers, plan);
  };

  /** Streams one version's bytes (or a range of them) with the stream-level faults. */
  const sendContent = async (
    ex: Exchange,
    ref: ContentRef,
    headers: OutgoingHttpHeaders,
    plan: FaultPlan,
  ): Promise<number> => {
    const range = parseRange(ex.req.headers.range, ref.bytes);
    if (range === 'unsatisfiable') {
      throw new DoubleHttpError(416, 'Range not satisfiable', 'Range not satisfiable', {
        'Content-Range': `bytes */${ref.bytes}`,
      });
    }
    const start = range?.start ?? 0;
    const end = range?.end ?? ref.bytes - 1;
    const length = Math.max(0, end - start + 1);
    writeHead(ex, range ? 206 : 200, {
      'Accept-Ranges': 'bytes',
      'Content-Length': length,
      ...(range && { 'Content-Range': `bytes ${start}-${end}/${ref.bytes}` }),
      ...headers,
    });
    if (ex.req.method === 'HEAD') {
      ex.res.end();
      return 0;
    }
    return writeBody(ex.res, library.contentSlices(ref, start, end + 1), {
      plan,
      length,
      contentStart: start,
      contentLength: ref.bytes,
      signal,
    });
  };

  /** Finds the asset a delivery path names: `<id>.<format>` for image/video, `<id>` otherwise. */
  const resolveDeliveryPath = (
    resourceType: ResourceType,
    type: string,
    path: string,
  ): { publicId: string; asset: DoubleAsset | undefined; requestedFormat: string | undefined } => {
    if (resourceType !== 'raw') {
      const dot = path.lastIndexOf('.');
      if (dot > 0 && !path.slice(dot).includes('/')) {
        const publicId = path.slice(0, dot);
        const asset = library.get(resourceType, type, publicId);
        if (asset !== undefined) return { publicId, asset, requestedFormat: path.slice(dot + 1) };
      }
    }
    return { publicId: path, asset: library.get(resourceType, type, path), requestedFormat: undefined };
  };

  const handleDelivery = async (
    ex: Exchange,
    resourceType: ResourceType,
    type: string,
    rest: string[],
  ): Promise<void> => {
    ex.entry.kind = 'delivery';
    counters.deliveryRequests += 1;
    let signature: string | undefined;
    let version: number | undefined;
    let first = rest[0] ?? '';
    if (/^s--[A-Za-z0-9_-]{8,32}--$/.test(first)) {
      signature = first.slice(3, -2);
      rest = rest.slice(1);
      first = rest[0] ?? '';
    }
    if (/^v\d+$/.test(first) && rest.length > 1) {
      version = Number(first.slice(1));
      rest = rest.slice(1);
    }
    const path = rest.join('/');
    const { publicId, asset, requestedFormat } = resolveDeliveryPath(resourceType, type, path);
    ex.entry.publicId = publicId;

    const plan = faults.plan('delivery', publicId);
    if (!(await applyPreFaults(ex, plan))) return;

    if (signature !== undefined && !verifyDeliverySignature(signature, path, apiSecret)) {
      throw new Unauthorized('Invalid URL signature');
    }
    if (signature === undefined && (type === 'private' || type === 'authenticated')) {
      throw new Unauthorized(`A ${type} asset needs a signed URL`);
    }
    if (asset === undefined || path === '') throw new NotFound(`Resource not found - ${path}`);
    if (requestedFormat !== undefined && requestedFormat !== asset.format) {
      throw new NotFound(
        `The double serves originals only (${asset.format ?? 'no format'}), not ${requestedFormat}`,
        'Format conversion not supported by the double',
      );
    }

    const assetKey = `${asset.resource_type}/${asset.type}/${asset.public_id}`;
    let served: ContentRef = asset;
    if (version !== undefined) {
      const known = asset.versions.find((v) => v.version === version);
      if (known !== undefined)
        served = { asset_id: asset.asset_id, version: known.version, bytes: known.bytes };
      else if (unknownVersion === 'not-found')
        throw new NotFound(`No version ${version} of ${asset.public_id}`);
    } else if (options.staleUnversioned) {
      const cached = staleVersions.get(assetKey);
      const known = asset.versions.find((v) => v.version === cached);
      if (known !== undefined)
        served = { asset_id: asset.asset_id, version: known.version, bytes: known.bytes };
      else staleVersions.set(assetKey, asset.version);
    }

    const written = await sendContent(
      ex,
      served,
      {
        'Content-Type': mimeTypeOf(asset.resource_type === 'raw' ? asset.public_id : asset.format),
        'Last-Modified': new Date(served.version * 1000).toUTCString(),
        'Cache-Control': 'public, max-age=2592000',
      },
      plan,
    );
    ex.entry.bytes = written;
    counters.deliveryBytes += written;
  };

  const handleDownload = async (ex: Exchange, resourceType: ResourceType): Promise<void> => {
    ex.entry.kind = 'download';
    counters.downloadApiRequests += 1;
    const publicId = ex.query.get('public_id') ?? '';
    ex.entry.publicId = publicId;
    const plan = faults.plan('download', publicId);
    if (!(await applyPreFaults(ex, plan))) return;

    const signature = ex.query.get('signature') ?? '';
    const key = ex.query.get('api_key') ?? '';
    if (!safeEqual(key, apiKey)) throw new Unauthorized('Unknown API key', 'Invalid api_key');
    const signed = new Map([...ex.query].filter(([name]) => name !== 'signature' && name !== 'api_key'));
    if (!verifyApiSignature(signed, signature, apiSecret)) {
      throw new Unauthorized('Invalid Signature', 'Invalid Signature');
    }
    if (!ex.query.get('timestamp')) throw new BadRequest('Missing required parameter - timestamp');
    const expiresAt = ex.query.get('expires_at');
    if (expiresAt && Number(expiresAt) * 1000 < clock.now().getTime()) {
      throw new Unauthorized('This download URL has expired', 'Expired URL');
    }
    if (publicId === '') throw new BadRequest('Missing required parameter - public_id');
    const type = ex.query.get('type') || 'upload';
    const asset = library.get(resourceType, type, publicId);
    if (asset === undefined) throw new NotFound(`Resource not found - ${publicId}`);
    const format = ex.query.get('format') || undefined;
    if (format !== undefined && resourceType !== 'raw' && format !== asset.format) {
      throw new NotFound(`The double serves originals only (${asset.format ?? 'no format'}), not ${format}`);
    }
    const fileName = asset.public_id.slice(asset.public_id.lastIndexOf('/') + 1);
    const attachment = ex.query.get('attachment');
    const written = await sendContent(
      ex,
      asset,
      {
        'Content-Type': mimeTypeOf(asset.resource_type === 'raw' ? asset.public_id : asset.format),
        ...(attachment &&
          attachment !== 'false' && {
            'Content-Disposition': `attachment; filename*=UTF-8''${encodeURIComponent(fileName)}`,
          }),
      },
      plan,
    );
    ex.entry.bytes = written;
    counters.downloadBytes += written;
  };

  /** The triggers endpoints: logged in (above) but not metered against the hourly limit (unconfirmed). */
  const handleTriggers = async (ex: Exchange, id: string | undefined): Promise<void> => {
    ex.entry.kind = 'admin';
    counters.adminCalls += 1;
    const method = ex.req.method ?? 'GET';
    if (method === 'GET' && id === undefined) return sendJson(ex, 200, webhooks.list());
    if (method === 'DELETE' && id !== undefined) return sendJson(ex, 200, webhooks.remove(id));
    if (method === 'POST' && id === undefined) {
      const text = await readBody(ex.req);
      const type = String(ex.req.headers['content-type'] ?? '');
      let params: Record<string, unknown>;
      try {
        params = type.includes('json')
          ? (JSON.parse(text || '{}') as Record<string, unknown>)
          : Object.fromEntries(new URLSearchParams(text));
      } catch {
        throw new BadRequest('The body is not valid JSON');
      }
      for (const [key, value] of ex.query) params[key] ??= value;
      return sendJson(ex, 200, webhooks.create(params));
    }
    throw new NotFound('Unsupported method');
  };

  /** The signed Upload API (see UploadApi.ts): no Basic auth, the signature is the login. */
  const handleUpload = async (ex: Exchange, resourceType: ResourceType): Promise<void> => {
    ex.entry.kind = 'upload';
    counters.uploadRequests += 1;
    const plan = faults.plan('upload', undefined);
    if (!(await applyPreFaults(ex, plan))) {
      ex.req.resume();
      return;
    }
    const body = await uploads.handle(ex.req, resourceType);
    if (typeof body.public_id === 'string') ex.entry.publicId = body.public_id;
    await sendJson(ex, 200, body);
  };

  const route = async (ex: Exchange, rawPath: string): Promise<void> => {
    const raw = rawPath.split('/').slice(1);
    if (raw[0] === 'v1_1') {
      const rest = raw.slice(2).map(decodeSegment);
      const [first, second, third] = rest;
      const isSearch =
        (rest.length === 1 && first === 'resources/search') ||
        (rest.length === 2 && first === 'resources' && second === 'search');
      const isDownload =
        rest.length === 2 &&
        second === 'download' &&
        (RESOURCE_TYPES as readonly string[]).includes(first ?? '');
      const isUpload =
        rest.length === 2 &&
        second === 'upload' &&
        ex.req.method === 'POST' &&
        (RESOURCE_TYPES as readonly string[]).includes(first ?? '');
      if (isUpload) {
        if (decodeSegment(raw[1] ?? '') !== cloudName) {
          ex.entry.kind = 'upload';
          ex.req.resume();
          throw new Unauthorized(`Invalid cloud_name ${raw[1] ?? ''}`, 'Invalid cloud_name');
        }
        return handleUpload(ex, first as ResourceType);
      }
      ex.entry.kind = isSearch ? 'search' : isDownload ? 'download' : 'admin';
      if (!isDownload) {
        // Login comes first; a refused login is neither metered nor given rate-limit headers.
        const denied = authorize(ex.req);
        if (denied) return sendError(ex, denied);
      }
      if (decodeSegment(raw[1] ?? '') !== cloudName) {
        throw new Unauthorized(`Invalid cloud_name ${raw[1] ?? ''}`, 'Invalid cloud_name');
      }
      if (isSearch) {
        if (ex.req.method !== 'POST' && ex.req.method !== 'GET') throw new NotFound('Unsupported method');
        return handleAdmin(ex, { action: 'search' });
      }
      if (isDownload) {
        ex.entry.kind = 'download';
        if (ex.req.method !== 'GET' && ex.req.method !== 'HEAD') throw new NotFound('Unsupported method');
        return handleDownload(ex, first as ResourceType);
      }
      if (first === 'triggers' && rest.length <= 2) return handleTriggers(ex, second);
      if (ex.req.method === 'DELETE' && first === 'resources' && rest.length === 3) {
        return handleAdmin(ex, {
          action: 'delete',
          resourceType: parseResourceType(second),
          type: third ?? 'upload',
        });
      }
      if (ex.req.method !== 'GET') throw new NotFound('The double serves read-only Admin calls');
      if (rest.length === 1 && first === 'ping') return handleAdmin(ex, { action: 'ping' });
      if (first === 'resources' && rest.length === 2 && /^[0-9a-f]{32}$/.test(second ?? '')) {
        return handleAdmin(ex, { action: 'by-asset-id', assetId: second ?? '' });
      }
      if (first === 'resources' && rest.length >= 2) {
        const resourceType = parseResourceType(second);
        if (rest.length <= 3) return handleAdmin(ex, { action: 'list', resourceType, type: third });
        // The SDK sends the id as one %2F-escaped segment; a raw multi-segment id is joined back.
        return handleAdmin(ex, {
          action: 'details',
          resourceType,
          type: third ?? 'upload',
          publicId: rest.slice(3).join('/'),
        });
      }
      throw new NotFound('Unknown Admin API route');
    }
    if (
      raw.length >= 4 &&
      decodeSegment(raw[0] ?? '') === cloudName &&
      (RESOURCE_TYPES as readonly string[]).includes(raw[1] ?? '')
    ) {
      ex.entry.kind = 'delivery';
      if (ex.req.method !== 'GET' && ex.req.method !== 'HEAD') throw new NotFound('Unsupported method');
      return handleDelivery(
        ex,
        raw[1] as ResourceType,
        decodeSegment(raw[2] ?? ''),
        raw.slice(3).map(decodeSegment),
      );
    }
    throw new NotFound('Not found');
  };

  const server = createServer({ keepAlive: true }, (req, res) => {
    const rawUrl = req.url ?? '/';
    const queryAt = rawUrl.indexOf('?');
    const rawPath = queryAt < 0 ? rawUrl : rawUrl.slice(0, queryAt);
    const entry: RequestLogEntry = {
      at: clock.now(),
      method: req.method ?? 'GET',
      path: maskedPath(rawPath),
      status: 0,
      kind: 'other',
    };
    log(entry);
    const ex: Exchange = {
      req,
      res,
      query: new URLSearchParams(queryAt < 0 ? '' : rawUrl.slice(queryAt + 1)),
      entry,
    };
    route(ex, rawPath).catch(async (error: unknown) => {
      if (res.headersSent || res.destroyed) {
        res.destroy();
        return;
      }
      const failure =
        error instanceof DoubleHttpError
          ? error
          : new DoubleHttpError(
              500,
              `Double internal error: ${error instanceof Error ? error.message : 'unknown'}`,
            );
      await sendError(ex, failure).catch(() => res.destroy());
    });
  });
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const origin = `http://127.0.0.1:${port}`;
  base.origin = origin;
  let closed: Promise<void> | undefined;

  return {
    port,
    origin,
    cloudName,
    apiKey,
    apiSecret,
    cloudinaryUrl: `cloudinary://${encodeURIComponent(apiKey)}:${encodeURIComponent(apiSecret)}@${cloudName}?upload_prefix=${origin}&secure=false&cname=127.0.0.1:${port}`,
    sdkOptions: {
      cloud_name: cloudName,
      api_key: apiKey,
      api_secret: apiSecret,
      upload_prefix: origin,
      secure: false,
      cname: `127.0.0.1:${port}`,
    },
    library,
    clock,
    faults,
    webhooks,
    counters,
    requestLog,
    rateLimit,
    setSearchMode(mode: SearchMode) {
      if (!SEARCH_MODES.includes(mode))
        throw new Error(`search mode must be one of ${SEARCH_MODES.join(', ')}`);
      searchMode = mode;
    },
    setRateLimit(perHour: number) {
      if (!(Number.isInteger(perHour) && perHour >= 0)) throw new Error('rate limit must be an integer >= 0');
      limiter.limit = perHour;
    },
    rateLimitRemaining: () => limiter.peek().remaining,
    deliveryUrl: (asset: DoubleAsset) => deliveryUrl(base, asset),
    close() {
      closed ??= new Promise<void>((resolve) => {
        closing.abort();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}

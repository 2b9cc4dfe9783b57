import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { Transform, type Readable } from 'node:stream';
import { AssetGoneError, PermanentAssetError, ReplicatorError, RetryableError } from '../errors.js';
import type { OpenedAsset, SourceAsset } from '../types.js';

/** Originals from the delivery host or the download API: never the Admin API, never rate-limited. */
const agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };

/** Ids whose path form an HTTP stack may rewrite; those are fetched through the download API. */
export function needsDownloadApi(publicId: string): boolean {
  return publicId.split('/').some((s) => s === '' || s === '.' || s === '..') || /[%?#\\]/u.test(publicId);
}

/** GETs an original (from `offset` when given), failing it when the server stays silent for `idleMs`. */
export function fetchOriginal(
  asset: SourceAsset,
  url: string,
  options: { signal?: AbortSignal; offset?: number },
  idleMs: number,
): Promise<OpenedAsset> {
  const what = `download of ${asset.resourceType}/${asset.deliveryType}/${asset.publicId} v${asset.version}`;
  const target = new URL(url);
  const client = target.protocol === 'http:' ? http : https;
  const offset = options.offset ?? 0;
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

/**
 * Passes the body through, failing it when the server sends nothing for `idleMs`. Time spent
 * waiting on a slow consumer (bytes sitting in the buffers) does not count as server silence.
 */
function watchIdle(response: IncomingMessage, idleMs: number, what: string): Readable {
  // One timer, restarted per chunk (refresh allocates nothing; a new timer per chunk was garbage).
  const timer: NodeJS.Timeout = setTimeout(() => {
    if (watchdog.readableLength > 0 || watchdog.writableLength > 0 || response.isPaused()) arm();
    else response.destroy(new RetryableError(`${what}: no data for ${idleMs} ms`));
  }, idleMs);
  const arm = () => {
    timer.refresh();
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

/** The CDN refused a restricted media type: the download API serves it. */
export class RestrictedDeliveryError extends PermanentAssetError {}

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

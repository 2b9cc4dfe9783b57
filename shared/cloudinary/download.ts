import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
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
 * The response itself, failed when the server sends nothing for `idleMs`. Time spent waiting on a
 * slow consumer (the response paused, or bytes sitting in its buffer) does not count as server
 * silence. No stream in between and nothing per chunk: a timer looks at the socket's byte count a
 * few times per `idleMs` (so silence is noticed between `idleMs` and 1.25 × `idleMs`).
 */
function watchIdle(response: IncomingMessage, idleMs: number, what: string): Readable {
  const socket = response.socket;
  let seenBytes = socket?.bytesRead ?? 0;
  let lastProgress = performance.now();
  const timer = setInterval(
    () => {
      const bytes = socket?.bytesRead ?? 0;
      const now = performance.now();
      if (bytes !== seenBytes || response.isPaused() || response.readableLength > 0) {
        seenBytes = bytes;
        lastProgress = now;
      } else if (now - lastProgress >= idleMs) {
        response.destroy(new RetryableError(`${what}: no data for ${idleMs} ms`));
      }
    },
    Math.max(1, Math.floor(idleMs / 4)),
  );
  // The socket outlives the response (keep-alive); the timer does not.
  response.once('close', () => clearInterval(timer));
  // Node fails a cut-off body through destroy() with a bare error: it is said what it means here.
  const destroy = response.destroy.bind(response);
  response.destroy = (error?: Error) =>
    destroy(
      error === undefined || error instanceof ReplicatorError
        ? error
        : new RetryableError(
            `${what}: the body was cut off [${(error as NodeJS.ErrnoException).code ?? error.message}]`,
            { cause: error },
          ),
    );
  return response;
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

import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { CloudinaryCredentials } from '../config.js';
import { normalizeSdkError, nextHour, statusOf } from '../cloudinary/errors.js';
import { callOptions, type CloudinaryV2 } from '../cloudinary/sdk.js';
import { PermanentAssetError, RetryableError, type ReplicatorError } from '../errors.js';
import type { ManifestEntry } from '../engine/manifest.js';

/** What the Upload API answered, as far as restore needs it. */
export interface UploadAnswer {
  publicId: string;
  version: number;
  bytes: number;
  etag?: string;
  /** `existing: true`: the asset was already there and `overwrite=false` kept it unchanged. */
  existing: boolean;
}

export interface UploadSettings {
  overwrite: boolean;
  /** Bytes per request of the chunked upload (the SDKs' upload_large: 20 MB by default, 5 MB at least). */
  chunkBytes: number;
  /** No byte read and no answer for this long: the upload is abandoned (the SDK's own timeout is not enforced). */
  idleTimeoutMs: number;
}

/** Cloudinary's `context` and `metadata` take strings, integers and (metadata) lists. */
function uploadable(values: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (values === undefined || Object.keys(values).length === 0) return undefined;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(values)) {
    out[key] =
      Array.isArray(value) || Number.isInteger(value)
        ? value
        : typeof value === 'string'
          ? value
          : JSON.stringify(value);
  }
  return out;
}

/** The options of one asset's upload: its address and metadata, never a name of the SDK's choosing. */
export function uploadOptions(entry: ManifestEntry, settings: UploadSettings): Record<string, unknown> {
  const base = entry.publicId.slice(entry.publicId.lastIndexOf('/') + 1) || 'file';
  return {
    resource_type: entry.resourceType,
    type: entry.deliveryType,
    public_id: entry.publicId,
    // Keeps the public id as given: no random suffix, no file name in its place.
    use_filename: false,
    unique_filename: false,
    overwrite: settings.overwrite,
    ...(settings.overwrite && { invalidate: true }),
    ...(entry.tags?.length && { tags: entry.tags }),
    ...(uploadable(entry.context) && { context: uploadable(entry.context) }),
    ...(uploadable(entry.metadata) && { metadata: uploadable(entry.metadata) }),
    // The multipart file name carries the format (Cloudinary also detects it from the bytes).
    filename: entry.resourceType !== 'raw' && entry.format ? `${base}.${entry.format}` : base,
    chunk_size: settings.chunkBytes,
  };
}

/**
 * Streams `body` into Cloudinary with the SDK's chunked upload (`upload_chunked_stream`, as
 * `upload_large` does): memory holds one chunk, never the whole file. Resolves with the answer and
 * the MD5 and size of the bytes read from the backup; rejects with our error classes.
 */
export function uploadAsset(
  sdk: CloudinaryV2,
  credentials: CloudinaryCredentials,
  entry: ManifestEntry,
  body: Readable,
  settings: UploadSettings,
  onBytes: (count: number) => void = () => undefined,
): Promise<{ answer: UploadAnswer; readMd5: string; readBytes: number }> {
  const hash = createHash('md5');
  let readBytes = 0;
  const what = `uploading ${entry.id}`;
  return new Promise((resolve, reject) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (error: unknown, answer?: UploadAnswer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error !== undefined) {
        body.destroy();
        reject(error);
      } else resolve({ answer: answer as UploadAnswer, readMd5: hash.digest('hex'), readBytes });
    };
    const watchdog = (): void => {
      clearTimeout(timer);
      timer = setTimeout(
        () =>
          finish(
            new RetryableError(`${what}: no progress for ${Math.round(settings.idleTimeoutMs / 1000)} s`),
          ),
        settings.idleTimeoutMs,
      );
      timer.unref();
    };
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hash.update(chunk);
        readBytes += chunk.length;
        onBytes(chunk.length);
        watchdog();
        done(null, chunk);
      },
    });
    const chunker = sdk.uploader.upload_chunked_stream(
      { ...callOptions(credentials), ...uploadOptions(entry, settings) },
      (error, result) => {
        if (error !== undefined || result === undefined) {
          finish(uploadError(error ?? result, what));
          return;
        }
        const answer = result as unknown as Record<string, unknown>;
        finish(undefined, {
          publicId: String(answer.public_id),
          version: Number(answer.version),
          bytes: Number(answer.bytes),
          etag: typeof answer.etag === 'string' ? answer.etag : undefined,
          existing: answer.existing === true,
        });
      },
    );
    watchdog();
    pipeline(body, counter, chunker).catch((error: unknown) =>
      finish(new RetryableError(`${what}: reading the backup copy failed: ${(error as Error).message}`)),
    );
  });
}

/** The SDK's rejection as one of our errors; a request over the per-request limit (413) is Cloudinary's refusal. */
function uploadError(raw: unknown, what: string): ReplicatorError {
  const [status, message] = statusOf(raw);
  if (status === 413) return new PermanentAssetError(`${what}: Cloudinary refused it (HTTP 413: ${message})`);
  return normalizeSdkError(raw, what, () => nextHour(new Date()));
}

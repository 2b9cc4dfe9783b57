import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { META } from '../constants.js';
import { dispositionOf, IntegrityError } from '../errors.js';
import { commitFile, hashFile, removeFile } from '../local/files.js';
import { resolveInside } from '../local/safePath.js';
import type { ProgressReporter } from '../progress.js';
import type { ListedObject, LocalFile } from './decide.js';
import type { Md5Source, PulledRecord, PullIndex } from './PullIndex.js';
import { TransferMeter, type BandwidthLimit } from './throttle.js';

/** What every transfer needs: the bucket, the destination, the index and the progress display. */
export interface TransferContext {
  s3: S3Client;
  bucket: string;
  /** The destination folder (real path). */
  root: string;
  /** Where partial downloads wait: `<root>/.cloudinary-backup/partial`. */
  partialDir: string;
  index: PullIndex;
  progress: ProgressReporter;
  limit?: BandwidthLimit;
  signal?: AbortSignal;
  /** Attempts per file for retryable errors (network, 5xx, checksum). */
  attempts: number;
  now: () => Date;
}

export type DownloadOutcome =
  | { kind: 'downloaded'; record: PulledRecord; bytes: number; resumedFrom: number }
  /** Not readable until restored (found out at GET time, e.g. an Intelligent-Tiering archive tier). */
  | { kind: 'archived' }
  /** Deleted from the bucket between the listing and the download. */
  | { kind: 'vanished' };

/** The object changed between the listing and the GET (If-Match failed). */
class ObjectChangedError extends Error {}
/** A resumed download did not hash right: the kept prefix was bad, start over. */
class ResumedMismatchError extends Error {}

const MD5_HEX = /^[0-9a-f]{32}$/iu;

/** Name of a key's partial file: the hash of the key, so any key gives a safe, fixed-length name. */
export function partialPathFor(ctx: Pick<TransferContext, 'partialDir'>, key: string): string {
  return join(ctx.partialDir, createHash('sha256').update(key, 'utf8').digest('hex'));
}

/**
 * Downloads one object into its place: to a partial file first (resuming one left by an earlier
 * run when it belongs to the same ETag, after hashing its bytes), verified against the recorded
 * MD5, then fsynced, timed and renamed. Retryable failures resume from what arrived.
 */
export async function downloadObject(
  ctx: TransferContext,
  listed: ListedObject,
  relative: string,
  options: { fresh?: boolean } = {},
): Promise<DownloadOutcome> {
  let fresh = options.fresh ?? false;
  // Some S3-compatible servers list no ETag; then there is nothing to pin the download to.
  let ifMatch: string | undefined = listed.etag || undefined;
  for (let attempt = 1; ; attempt++) {
    try {
      return await attemptDownload(ctx, listed, relative, { fresh, ifMatch });
    } catch (error) {
      ctx.signal?.throwIfAborted();
      if (attempt >= ctx.attempts) throw error;
      if (error instanceof ObjectChangedError) {
        // Take whatever the object is now; its ETag is recorded from the response.
        ifMatch = undefined;
        fresh = true;
      } else if (error instanceof ResumedMismatchError) {
        fresh = true;
      } else if (dispositionOf(error) !== 'retry') {
        throw error;
      }
      await sleep(Math.min(8_000, 500 * 2 ** (attempt - 1)), undefined, { signal: ctx.signal });
    }
  }
}

async function attemptDownload(
  ctx: TransferContext,
  listed: ListedObject,
  relative: string,
  options: { fresh: boolean; ifMatch?: string },
): Promise<DownloadOutcome> {
  const { key } = listed;
  const partialPath = partialPathFor(ctx, key);
  let hash = createHash('md5');
  let offset = 0;
  const kept = ctx.index.partial(key);
  if (!options.fresh && kept && kept.etag === options.ifMatch) {
    const info = await lstat(partialPath).catch(() => undefined);
    if (info?.isFile() && info.size <= listed.size) {
      // The final MD5 must cover the whole file, so the kept prefix is hashed first.
      offset = (await hashFile(partialPath, hash, { length: info.size, signal: ctx.signal })).bytes;
    }
  }
  if (offset === 0) {
    await removeFile(partialPath);
    ctx.index.removePartial(key);
  }

  if (offset > 0 && offset === listed.size) {
    // Every byte arrived before the last run stopped; only the metadata is missing.
    const head = await sendOrClassify(() =>
      ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: key, IfMatch: options.ifMatch }), {
        abortSignal: ctx.signal,
      }),
    );
    if ('kind' in head) return head;
    ctx.progress.addDoneBytes(offset);
    const expected = await expectedMd5(ctx, key, head.Metadata, head.ETag, head.ServerSideEncryption);
    return finish(ctx, listed, relative, {
      partialPath,
      md5: hash.digest('hex'),
      expected,
      etag: head.ETag ?? listed.etag,
      total: offset,
      offset,
      mtime: createdAtOf(head.Metadata) ?? head.LastModified ?? listed.lastModified,
    });
  }

  const response = await sendOrClassify(() =>
    ctx.s3.send(
      new GetObjectCommand({
        Bucket: ctx.bucket,
        Key: key,
        Range: offset > 0 ? `bytes=${offset}-` : undefined,
        IfMatch: options.ifMatch,
      }),
      { abortSignal: ctx.signal },
    ),
  );
  if ('kind' in response) return response;
  const body = response.Body as Readable | undefined;
  if (!body) throw new IntegrityError(`${key}: the GET returned no body`);
  if (offset > 0 && !response.ContentRange) {
    // The server sent the whole object instead of the range: start the file over.
    await removeFile(partialPath);
    hash = createHash('md5');
    offset = 0;
  }
  const etag = response.ETag ?? listed.etag;
  ctx.index.putPartial({ key, etag, startedAt: ctx.now().toISOString() });
  const total = totalFromContentRange(response.ContentRange) ?? offset + (response.ContentLength ?? 0);
  const expected = await expectedMd5(ctx, key, response.Metadata, etag, response.ServerSideEncryption);

  const meter = new TransferMeter(hash, (n) => ctx.progress.addBytes(n), ctx.limit, ctx.signal);
  ctx.progress.addDoneBytes(offset);
  try {
    // `flush` fsyncs before close, so the rename in finish() never publishes unwritten bytes.
    await pipeline(
      body,
      meter,
      createWriteStream(partialPath, { flags: offset > 0 ? 'a' : 'w', flush: true }),
      { signal: ctx.signal },
    );
  } catch (error) {
    body.destroy();
    ctx.progress.removeBytes(offset + meter.bytes);
    throw error;
  }
  const bytes = offset + meter.bytes;
  if (bytes !== total) {
    ctx.progress.removeBytes(bytes);
    if (bytes > total) await discardPartial(ctx, key, partialPath);
    throw new IntegrityError(`${key}: received ${bytes} bytes, the object has ${total}`);
  }
  return finish(ctx, listed, relative, {
    partialPath,
    md5: hash.digest('hex'),
    expected,
    etag,
    total,
    offset,
    mtime: createdAtOf(response.Metadata) ?? response.LastModified ?? listed.lastModified,
  });
}

async function finish(
  ctx: TransferContext,
  listed: ListedObject,
  relative: string,
  got: {
    partialPath: string;
    md5: string;
    expected: { md5?: string; source: Md5Source };
    etag: string;
    total: number;
    offset: number;
    mtime?: Date;
  },
): Promise<DownloadOutcome> {
  if (got.expected.md5 !== undefined && got.expected.md5 !== got.md5) {
    ctx.progress.removeBytes(got.total);
    await discardPartial(ctx, listed.key, got.partialPath);
    if (got.offset > 0) throw new ResumedMismatchError(`${listed.key}: resumed file did not verify`);
    throw new IntegrityError(
      `${listed.key}: MD5 ${got.md5} does not match the recorded ${got.expected.md5} (${got.expected.source})`,
    );
  }
  const finalPath = await commitFile(got.partialPath, ctx.root, relative, got.mtime);
  const info = await lstat(finalPath);
  const record: PulledRecord = {
    key: listed.key,
    localPath: relative,
    size: got.total,
    etag: got.etag,
    // The MD5 of what landed on disk, so --verify can check even objects S3 gave no MD5 for.
    md5: got.md5,
    md5Source: got.expected.source,
    localSize: info.size,
    localMtimeMs: info.mtimeMs,
    storageClass: listed.storageClass,
    pulledAt: ctx.now().toISOString(),
  };
  ctx.index.put(record);
  ctx.index.removePartial(listed.key);
  ctx.index.removeRestore(listed.key);
  ctx.progress.fileDone();
  return { kind: 'downloaded', record, bytes: got.total - got.offset, resumedFrom: got.offset };
}

async function discardPartial(ctx: TransferContext, key: string, partialPath: string): Promise<void> {
  await removeFile(partialPath);
  ctx.index.removePartial(key);
}

/** Runs an S3 call, turning the answers that are not errors for a pull into outcomes. */
async function sendOrClassify<T>(
  call: () => Promise<T>,
): Promise<T | { kind: 'archived' } | { kind: 'vanished' }> {
  try {
    return await call();
  } catch (error) {
    const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
    if (e.name === 'PreconditionFailed' || e.$metadata?.httpStatusCode === 412)
      throw new ObjectChangedError('changed since listed', { cause: error });
    if (e.name === 'InvalidObjectState') return { kind: 'archived' };
    if (e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404)
      return { kind: 'vanished' };
    throw error;
  }
}

function totalFromContentRange(range: string | undefined): number | undefined {
  const match = range ? /\/(\d+)\s*$/u.exec(range) : null;
  return match ? Number(match[1]) : undefined;
}

/** The asset's creation time from the `created-at` metadata, when it parses. */
export function createdAtOf(metadata: Record<string, string> | undefined): Date | undefined {
  const raw = metadata?.[META.createdAt];
  if (!raw) return undefined;
  let text = raw;
  try {
    text = decodeURIComponent(raw);
  } catch {
    // Not percent-encoded; use as is.
  }
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/**
 * The MD5 a download must match: the `md5` metadata the replicator wrote, else an `md5` tag,
 * else the ETag when it is a plain MD5 (not multipart `-N`, not SSE-KMS), else none (size only).
 */
export async function expectedMd5(
  ctx: Pick<TransferContext, 's3' | 'bucket' | 'signal'>,
  key: string,
  metadata: Record<string, string> | undefined,
  etag: string | undefined,
  encryption: string | undefined,
): Promise<{ md5?: string; source: Md5Source }> {
  const fromMetadata = metadata?.[META.md5];
  if (fromMetadata && MD5_HEX.test(fromMetadata))
    return { md5: fromMetadata.toLowerCase(), source: 'metadata' };
  try {
    const tags = await ctx.s3.send(new GetObjectTaggingCommand({ Bucket: ctx.bucket, Key: key }), {
      abortSignal: ctx.signal,
    });
    const tag = tags.TagSet?.find((t) => t.Key === META.md5)?.Value;
    if (tag && MD5_HEX.test(tag)) return { md5: tag.toLowerCase(), source: 'tag' };
  } catch {
    // No permission to read tags, or none: fall through to the ETag.
  }
  const plain = plainMd5Etag(etag);
  if (plain && !encryption?.startsWith('aws:kms')) return { md5: plain, source: 'etag' };
  return { source: 'none' };
}

/** The ETag as an MD5 hex when it is one (single-part upload), else undefined. */
export function plainMd5Etag(etag: string | undefined): string | undefined {
  const bare = etag?.replace(/^"|"$/gu, '');
  return bare && MD5_HEX.test(bare) ? bare.toLowerCase() : undefined;
}

/**
 * Recognises a local file nobody recorded (a lost index, a copy made another way) by hashing it
 * against the object's MD5: the listing's plain ETag when it is one, else a HEAD for the metadata.
 */
export async function adoptLocal(
  ctx: TransferContext,
  listed: ListedObject,
  relative: string,
  local: LocalFile,
  options: { record: boolean } = { record: true },
): Promise<boolean> {
  const plain = plainMd5Etag(listed.etag);
  let expected: { md5?: string; source: Md5Source };
  if (plain) {
    expected = { md5: plain, source: 'etag' };
  } else {
    const head = await ctx.s3
      .send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: listed.key }), { abortSignal: ctx.signal })
      .catch(() => undefined);
    if (!head) return false;
    expected = await expectedMd5(ctx, listed.key, head.Metadata, head.ETag, head.ServerSideEncryption);
  }
  if (!expected.md5) return false;
  const path = resolveInside(ctx.root, relative);
  const { hash } = await hashFile(path, createHash('md5'), { signal: ctx.signal });
  const md5 = hash.digest('hex');
  if (md5 !== expected.md5) return false;
  if (!options.record) return true;
  ctx.index.put({
    key: listed.key,
    localPath: relative,
    size: listed.size,
    etag: listed.etag,
    md5,
    md5Source: expected.source,
    localSize: local.size,
    localMtimeMs: local.mtimeMs,
    storageClass: listed.storageClass,
    pulledAt: ctx.now().toISOString(),
  });
  return true;
}

/** Re-hashes a recorded local file; false when its bytes no longer match what was verified. */
export async function verifyLocal(ctx: TransferContext, record: PulledRecord): Promise<boolean> {
  const path = resolveInside(ctx.root, record.localPath);
  const { hash, bytes } = await hashFile(path, createHash('md5'), { signal: ctx.signal });
  if (bytes !== record.size) return false;
  return record.md5 === undefined || hash.digest('hex') === record.md5;
}

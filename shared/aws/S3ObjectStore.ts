import { isTransientAwsError } from './awsErrors.js';
import {
  AbortMultipartUploadCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectTaggingCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Readable, pipeline } from 'node:stream';
import { META } from '../constants.js';
import {
  AssetGoneError,
  ConfigError,
  FatalError,
  ReplicatorError,
  RetryableError,
  describeError,
  dispositionOf,
} from '../errors.js';
import { VerifyingStream } from '../hashing.js';
import type {
  CopyCheckpoint,
  CopyOptions,
  ObjectStore,
  PutOptions,
  PutResult,
  StoredObject,
} from '../types.js';
import { copyInBucket } from './s3Copy.js';
import { contentTypeOf } from '../contentType.js';
import { resumableUpload, uploadMatches } from './resumableUpload.js';
import { PartSpill } from './partSpill.js';

const MiB = 1024 * 1024;
/** S3's smallest part (except the last) and most parts in one multipart upload. */
export const MIN_PART_BYTES = 5 * MiB;
export const MAX_PARTS = 10_000;
/** S3's largest part and largest object. */
export const MAX_PART_BYTES = 5 * 1024 * MiB;
export const MAX_OBJECT_BYTES = 5 * 1024 * 1024 * MiB;
export const DEFAULT_PART_BYTES = 8 * MiB;
/** S3 caps user metadata (keys and values) at 2 KB per object. */
const MAX_METADATA_BYTES = 2048;
const MD5_TAG = 'md5';

export interface S3ObjectStoreOptions {
  s3: S3Client;
  bucket: string;
  /** Bytes per multipart part (default 8 MiB, at least 5 MiB); grown for large `sizeHint`s. */
  partSize?: number;
  /** Parts uploaded in parallel (default 4); memory is bounded by (queueSize + 1) × partSize. */
  queueSize?: number;
  /** Keys per ListObjectsV2 page (default 1,000, S3's maximum). */
  listPageSize?: number;
  /**
   * A local folder where resumable copies keep the parts they have not recorded yet, so a copy
   * killed mid-part continues from the last byte received on this machine (none: from the last part).
   */
  spillDir?: string;
}

/**
 * Part size (whole MiB, at least `minPart`) with which an object of `maxBytes` fits in S3's
 * 10,000 parts.
 */
export function partSizeFor(maxBytes: number, minPart: number = MIN_PART_BYTES): number {
  if (maxBytes > MAX_OBJECT_BYTES) {
    throw new RangeError(`an object of ${maxBytes} bytes is larger than S3's 5 TiB limit`);
  }
  const needed = Math.ceil(Math.ceil(maxBytes / MAX_PARTS) / MiB) * MiB;
  return Math.min(MAX_PART_BYTES, Math.max(minPart, MIN_PART_BYTES, needed));
}

/** Throws unless metadata survives a trip through HTTP headers unchanged. */
export function assertHeaderSafeMetadata(metadata: Record<string, string>): void {
  let size = 0;
  for (const [name, value] of Object.entries(metadata)) {
    if (!/^[a-z0-9][a-z0-9._-]*$/u.test(name)) {
      throw new TypeError(
        `metadata name ${JSON.stringify(name)} must be lowercase letters, digits, '.', '_' or '-' (S3 lowercases names)`,
      );
    }
    if (!/^[\x20-\x7e]*$/u.test(value) || value !== value.trim()) {
      throw new TypeError(
        `metadata ${name} must be printable ASCII without leading or trailing spaces; encode it (e.g. encodeURIComponent) first`,
      );
    }
    size += name.length + value.length;
  }
  if (size > MAX_METADATA_BYTES) {
    throw new TypeError(`metadata takes ${size} bytes; S3 allows ${MAX_METADATA_BYTES}`);
  }
}

/** ObjectStore over an S3 bucket (versioned in production): streamed, verified, all-or-nothing puts. */
export class S3ObjectStore implements ObjectStore {
  readonly bucket: string;
  private readonly s3: S3Client;
  private readonly partSize: number;
  private readonly queueSize: number;
  private readonly listPageSize: number;
  private readonly spillDir: string | undefined;
  private bucketConfirmed = false;

  constructor(options: S3ObjectStoreOptions) {
    const { s3, bucket, partSize = DEFAULT_PART_BYTES, queueSize = 4, listPageSize = 1000 } = options;
    if (!bucket) throw new ConfigError('S3ObjectStore needs a bucket name');
    if (!Number.isInteger(partSize) || partSize < MIN_PART_BYTES || partSize > MAX_PART_BYTES) {
      throw new ConfigError(`partSize must be a whole number of bytes from 5 MiB to 5 GiB, not ${partSize}`);
    }
    if (!Number.isInteger(queueSize) || queueSize < 1) {
      throw new ConfigError(`queueSize must be a whole number of at least 1, not ${queueSize}`);
    }
    this.s3 = s3;
    this.bucket = bucket;
    this.partSize = partSize;
    this.queueSize = queueSize;
    this.listPageSize = listPageSize;
    this.spillDir = options.spillDir;
  }

  /** The part size of a copy of `size` bytes (grown past the configured one for the largest assets). */
  private partSizeFor(size: number | undefined): number {
    return size !== undefined && size > 0 ? partSizeFor(size, this.partSize) : this.partSize;
  }

  private spillOf(key: string, version: number, partSize: number): PartSpill | undefined {
    return this.spillDir === undefined
      ? undefined
      : new PartSpill(this.spillDir, { bucket: this.bucket, key, version }, partSize);
  }

  async put(key: string, body: Readable, options: PutOptions): Promise<PutResult> {
    const { metadata, signal } = options;
    const givenMd5 = metadata[META.md5];
    let partSize: number;
    try {
      assertHeaderSafeMetadata(metadata);
      if (givenMd5 !== undefined && !/^[0-9a-f]{32}$/iu.test(givenMd5)) {
        throw new TypeError(
          `metadata ${META.md5} must be 32 hexadecimal digits, not ${JSON.stringify(givenMd5)}`,
        );
      }
      partSize = this.partSizeFor(options.sizeHint);
      signal?.throwIfAborted();
    } catch (error) {
      body.destroy();
      throw error;
    }
    const resumable = options.resumable;
    if (resumable?.from?.partSize) partSize = resumable.from.partSize;
    const expected = { bytes: options.expected?.bytes, md5: givenMd5 ?? options.expected?.md5 };
    // Smaller than a part: one PutObject, nothing to resume.
    const done =
      resumable && (resumable.from !== undefined || (options.sizeHint ?? 0) >= partSize)
        ? await this.putInParts(key, body, options, partSize, expected)
        : await this.putWhole(key, body, options, partSize, expected);
    const { versionId, bytes, md5 } = done;
    if (!givenMd5) {
      // The checksum is known only after the last byte, too late for metadata: tag this version.
      await this.send(
        () =>
          this.s3.send(
            new PutObjectTaggingCommand({
              Bucket: this.bucket,
              Key: key,
              VersionId: versionId,
              Tagging: { TagSet: [{ Key: MD5_TAG, Value: md5 }] },
            }),
          ),
        `tagging ${key} with its MD5`,
      );
    }
    return { key, versionId, bytes, md5 };
  }

  /** A resumable copy: parts recorded as they finish, continued from a checkpoint. */
  private async putInParts(
    key: string,
    body: Readable,
    options: PutOptions,
    partSize: number,
    expected: { bytes?: number; md5?: string },
  ): Promise<{ versionId?: string; bytes: number; md5: string }> {
    const resumable = options.resumable;
    try {
      return await resumableUpload(body, {
        s3: this.s3,
        bucket: this.bucket,
        key,
        version: resumable?.version ?? 0,
        partSize,
        queueSize: this.queueSize,
        metadata: options.metadata,
        contentType: options.contentType ?? contentTypeOf(key),
        expected,
        ...(resumable?.from ? { from: resumable.from } : {}),
        ...(resumable?.onCheckpoint ? { onCheckpoint: resumable.onCheckpoint } : {}),
        ...(resumable ? { spill: this.spillOf(key, resumable.version, partSize) } : {}),
        send: (call, action) => this.send(call, action),
      });
    } catch (error) {
      body.destroy();
      if (options.signal?.aborted) throw abortReason(options.signal);
      throw error;
    }
  }

  private async putWhole(
    key: string,
    body: Readable,
    options: PutOptions,
    partSize: number,
    expected: { bytes?: number; md5?: string },
  ): Promise<{ versionId?: string; bytes: number; md5: string }> {
    const { metadata, signal } = options;
    // The object's md5 metadata must never describe other bytes than the ones stored.
    const verifier = new VerifyingStream(expected, key);
    // A failed or aborted body fails the verifier, which fails the upload before it completes.
    pipeline(body, verifier, () => undefined);
    const onAbort = () => body.destroy(abortReason(signal));
    signal?.addEventListener('abort', onAbort, { once: true });

    const upload = new Upload({
      client: this.s3,
      params: {
        Bucket: this.bucket,
        Key: key,
        Body: verifier,
        Metadata: metadata,
        ContentType: options.contentType ?? contentTypeOf(key),
      },
      partSize,
      queueSize: this.queueSize,
      leavePartsOnError: false,
    });
    try {
      const done = await upload.done();
      // An abort that arrives once S3 has completed the upload is too late to matter: every byte
      // passed the verifier, so the copy is whole (and taking it back would need delete rights).
      return { versionId: done.VersionId, bytes: verifier.bytes, md5: verifier.md5 };
    } catch (error) {
      verifier.destroy();
      if (signal?.aborted) throw abortReason(signal);
      throw this.classify(error, `uploading ${key}`);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Keeps the open upload of a checkpoint of this version when ListParts shows every recorded part;
   * any other unfinished upload of the key (another version, a dead copy) is aborted.
   */
  async resume(
    key: string,
    version: number,
    saved?: CopyCheckpoint,
    size?: number,
  ): Promise<CopyCheckpoint | undefined> {
    // Smaller than one part and no checkpoint: it goes up in one PutObject, which nothing open can
    // disturb. An upload a crash left before its first checkpoint is the lifecycle rule's to sweep.
    if (saved === undefined && size !== undefined && size < this.partSize) return undefined;
    const candidate =
      saved?.key === key && saved.version === version && saved.uploadId !== undefined ? saved : undefined;
    const keep =
      candidate &&
      (await uploadMatches(this.s3, this.bucket, candidate, (call, action) => this.send(call, action)))
        ? candidate
        : undefined;
    await this.discardUploads(key, keep?.uploadId);
    // Bytes after the last recorded part that an attempt on this machine received before it died.
    const partSize = keep?.partSize ?? this.partSizeFor(size);
    const done = keep?.bytes ?? 0;
    // A checkpoint of this version whose upload is gone may have been completed: no local bytes then.
    const spilled =
      size === undefined || size <= done || (candidate !== undefined && keep === undefined)
        ? 0
        : (this.spillOf(key, version, partSize)?.held(done, size - done) ?? 0);
    if (spilled === 0) return keep;
    return keep ? { ...keep, spilled } : { key, version, bytes: 0, partSize, spilled };
  }

  /** A server-side copy (CopyObject, part by part above 5 GB): a renamed asset, no download. */
  async copy(
    from: { key: string; versionId?: string },
    key: string,
    options: CopyOptions,
  ): Promise<PutResult> {
    assertHeaderSafeMetadata(options.metadata);
    return copyInBucket(
      { s3: this.s3, bucket: this.bucket, send: (call, action) => this.send(call, action) },
      from,
      key,
      options,
    );
  }

  async head(key: string): Promise<StoredObject | undefined> {
    let found;
    try {
      found = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (error) {
      if (isNotFound(error)) {
        // A HEAD 404 has no body, so a missing bucket looks like a missing key: check once.
        await this.confirmBucket();
        return undefined;
      }
      throw this.classify(error, `reading ${key}`);
    }
    this.bucketConfirmed = true;
    const metadata = found.Metadata ?? {};
    const md5 = metadata[META.md5] ?? (await this.md5Tag(key, found.VersionId));
    return {
      key,
      bytes: found.ContentLength ?? 0,
      md5,
      metadata,
      versionId: found.VersionId,
      etag: unquote(found.ETag),
      lastModified: found.LastModified,
      storageClass: found.StorageClass ?? 'STANDARD',
    };
  }

  async *list(prefix: string): AsyncIterable<StoredObject> {
    let token: string | undefined;
    do {
      const page = await this.send(
        () =>
          this.s3.send(
            new ListObjectsV2Command({
              Bucket: this.bucket,
              Prefix: prefix,
              ContinuationToken: token,
              MaxKeys: this.listPageSize,
            }),
          ),
        `listing ${prefix}`,
      );
      for (const object of page.Contents ?? []) {
        if (object.Key === undefined) continue;
        yield {
          key: object.Key,
          bytes: object.Size ?? 0,
          metadata: {},
          etag: unquote(object.ETag),
          lastModified: object.LastModified,
          storageClass: object.StorageClass ?? 'STANDARD',
        };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async get(key: string, range?: { start: number; end?: number }): Promise<Readable> {
    const header = range ? `bytes=${range.start}-${range.end ?? ''}` : undefined;
    let found;
    try {
      found = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: header }));
    } catch (error) {
      if (errorName(error) === 'NoSuchKey') {
        throw new AssetGoneError(`no object ${key} in S3 bucket "${this.bucket}"`, { cause: error });
      }
      throw this.classify(error, `reading ${key}`);
    }
    if (!(found.Body instanceof Readable)) {
      throw new RetryableError(`S3 returned no readable body for ${key}`);
    }
    return found.Body;
  }

  async discardIncomplete(key: string, bytes?: number): Promise<number> {
    // Smaller than one part: lib-storage sends it in a single PutObject, which leaves nothing open.
    if (bytes !== undefined && bytes < this.partSize) return 0;
    return this.discardUploads(key);
  }

  /** Aborts the unfinished uploads of `key` but `keep`; returns how many. */
  private async discardUploads(key: string, keep?: string): Promise<number> {
    let discarded = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const page = await this.send(
        () =>
          this.s3.send(
            new ListMultipartUploadsCommand({
              Bucket: this.bucket,
              Prefix: key,
              KeyMarker: keyMarker,
              UploadIdMarker: uploadIdMarker,
            }),
          ),
        `listing unfinished uploads of ${key}`,
      );
      // The prefix also matches longer keys; only this key's uploads are ours to discard.
      for (const upload of page.Uploads ?? []) {
        if (upload.Key !== key || !upload.UploadId || upload.UploadId === keep) continue;
        await this.send(
          () =>
            this.s3.send(
              new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: upload.UploadId }),
            ),
          `discarding an unfinished upload of ${key}`,
        );
        discarded += 1;
      }
      if (!page.IsTruncated) return discarded;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
    }
  }

  private async md5Tag(key: string, versionId: string | undefined): Promise<string | undefined> {
    const tags = await this.send(
      () =>
        this.s3.send(new GetObjectTaggingCommand({ Bucket: this.bucket, Key: key, VersionId: versionId })),
      `reading the tags of ${key}`,
    );
    return tags.TagSet?.find((tag) => tag.Key === MD5_TAG)?.Value;
  }

  private async confirmBucket(): Promise<void> {
    if (this.bucketConfirmed) return;
    try {
      await this.s3.send(new HeadBucketCommand({ Bucket: this.bucket }));
      this.bucketConfirmed = true;
    } catch (error) {
      throw isNotFound(error)
        ? this.missingBucket('checking the bucket', error)
        : this.classify(error, 'checking the bucket');
    }
  }

  private async send<T>(call: () => Promise<T>, action: string): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw this.classify(error, action);
    }
  }

  /** Turns an S3 failure into what to do about it; never echoes request details or credentials. */
  private classify(error: unknown, action: string): unknown {
    if (error instanceof ReplicatorError || errorName(error) === 'AbortError') return error;
    if (errorName(error) === 'NoSuchBucket') return this.missingBucket(action, error);
    if (dispositionOf(error) === 'fatal') {
      return new FatalError(
        `S3 denied access to bucket "${this.bucket}" (${action}): check the AWS credentials and that the IAM policy allows this on the bucket`,
        { cause: error },
      );
    }
    if (isTransientAwsError(error, S3_TRANSIENT)) {
      return new RetryableError(
        `S3 ${action} in "${this.bucket}" failed, try again: ${describeError(error)}`,
        {
          cause: error,
        },
      );
    }
    return error;
  }

  private missingBucket(action: string, cause: unknown): FatalError {
    return new FatalError(
      `S3 bucket "${this.bucket}" does not exist (${action}): check the bucket name setting, the AWS region and the account`,
      { cause },
    );
  }
}

function abortReason(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  if (reason instanceof Error) return reason;
  return Object.assign(new Error('upload aborted'), { name: 'AbortError' });
}

function unquote(etag: string | undefined): string | undefined {
  return etag?.replace(/^"|"$/gu, '');
}

function errorName(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null ? (error as { name?: string }).name : undefined;
}

function isNotFound(error: unknown): boolean {
  const name = errorName(error);
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return name === 'NotFound' || name === 'NoSuchKey' || status === 404;
}

const S3_TRANSIENT = [
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'RequestTimeout',
  'RequestTimeTooSkewed',
  'InternalError',
  'ServiceUnavailable',
  'TimeoutError',
];

import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  UploadPartCopyCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { META } from '../constants.js';
import { contentTypeOf } from '../contentType.js';
import { RetryableError } from '../errors.js';
import type { CopyOptions, PutResult } from '../types.js';

const MiB = 1024 * 1024;
/** CopyObject copies at most 5 GB in one request; larger objects go part by part (UploadPartCopy). */
export const COPY_OBJECT_MAX_BYTES = 5 * 1024 * MiB;
/** Part of a multipart copy: 10,000 of them cover S3's 5 TiB objects. */
const COPY_PART_BYTES = 1024 * MiB;

export interface CopyTarget {
  s3: S3Client;
  bucket: string;
  /** Wraps an S3 call, turning its failure into what to do about it. */
  send<T>(call: () => Promise<T>, action: string): Promise<T>;
}

/**
 * Copies an object inside the bucket, server side (a rename: no byte leaves S3), with new
 * metadata, then checks the new version's size. The MD5 is the source's: the bytes are the same.
 */
export async function copyInBucket(
  target: CopyTarget,
  from: { key: string; versionId?: string },
  key: string,
  options: CopyOptions,
): Promise<PutResult> {
  const { s3, bucket, send } = target;
  const source = `${bucket}/${encodeURIComponent(from.key).replaceAll('%2F', '/')}${
    from.versionId ? `?versionId=${encodeURIComponent(from.versionId)}` : ''
  }`;
  const metadata = { ...options.metadata, [META.md5]: options.expected.md5 };
  const contentType = contentTypeOf(key);
  const action = `copying ${from.key} to ${key}`;
  options.signal?.throwIfAborted();
  let versionId: string | undefined;
  if (options.expected.bytes <= COPY_OBJECT_MAX_BYTES) {
    const copied = await send(
      () =>
        s3.send(
          new CopyObjectCommand({
            Bucket: bucket,
            Key: key,
            CopySource: source,
            MetadataDirective: 'REPLACE',
            Metadata: metadata,
            ContentType: contentType,
          }),
          { abortSignal: options.signal },
        ),
      action,
    );
    versionId = copied.VersionId;
  } else {
    versionId = await copyInParts(
      target,
      source,
      key,
      options.expected.bytes,
      metadata,
      contentType,
      options.signal,
    );
  }
  const head = await send(
    () => s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId })),
    `checking the copy ${key}`,
  );
  if (head.ContentLength !== options.expected.bytes) {
    throw new RetryableError(
      `the copy of ${from.key} at ${key} has ${head.ContentLength ?? 0} bytes, not ${options.expected.bytes}`,
    );
  }
  return { key, versionId, bytes: options.expected.bytes, md5: options.expected.md5 };
}

async function copyInParts(
  target: CopyTarget,
  source: string,
  key: string,
  bytes: number,
  metadata: Record<string, string>,
  contentType: string | undefined,
  signal: AbortSignal | undefined,
): Promise<string | undefined> {
  const { s3, bucket, send } = target;
  const created = await send(
    () =>
      s3.send(
        new CreateMultipartUploadCommand({
          Bucket: bucket,
          Key: key,
          Metadata: metadata,
          ContentType: contentType,
        }),
      ),
    `starting the copy to ${key}`,
  );
  const uploadId = created.UploadId;
  try {
    const parts: { ETag?: string; PartNumber: number }[] = [];
    for (let start = 0, part = 1; start < bytes; start += COPY_PART_BYTES, part++) {
      signal?.throwIfAborted();
      const end = Math.min(bytes, start + COPY_PART_BYTES) - 1;
      const copied = await send(
        () =>
          s3.send(
            new UploadPartCopyCommand({
              Bucket: bucket,
              Key: key,
              UploadId: uploadId,
              PartNumber: part,
              CopySource: source,
              CopySourceRange: `bytes=${start}-${end}`,
            }),
            { abortSignal: signal },
          ),
        `copying part ${part} to ${key}`,
      );
      parts.push({ ETag: copied.CopyPartResult?.ETag, PartNumber: part });
    }
    const done = await send(
      () =>
        s3.send(
          new CompleteMultipartUploadCommand({
            Bucket: bucket,
            Key: key,
            UploadId: uploadId,
            MultipartUpload: { Parts: parts },
          }),
        ),
      `completing the copy to ${key}`,
    );
    return done.VersionId;
  } catch (error) {
    // Best effort: the bucket's lifecycle rule removes what stays behind.
    await s3
      .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }))
      .catch(() => undefined);
    throw error;
  }
}

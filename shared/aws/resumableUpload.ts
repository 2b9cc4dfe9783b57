import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  ListPartsCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { createMD5 } from 'hash-wasm';
import { IntegrityError } from '../errors.js';
import type { CopyCheckpoint } from '../types.js';
import type { PartSpill } from './partSpill.js';

/** What a resumable upload sends and how it reports, besides the bytes. */
export interface ResumableUploadParams {
  s3: S3Client;
  bucket: string;
  key: string;
  version: number;
  partSize: number;
  /** Parts uploaded at once; memory stays within (queueSize + 1) × partSize. */
  queueSize: number;
  metadata: Record<string, string>;
  contentType: string;
  expected: { bytes?: number; md5?: string };
  from?: CopyCheckpoint;
  onCheckpoint?: (checkpoint: CopyCheckpoint) => Promise<void>;
  /** Keeps the parts not yet recorded on local disk; `from.spilled` bytes of it are read back first. */
  spill?: PartSpill;
  /** Wraps each S3 call (classification of its errors). */
  send: <T>(call: () => Promise<T>, action: string) => Promise<T>;
}

/** A finished part as the checkpoint keeps it: `<etag> <crc32>` (CompleteMultipartUpload needs both). */
function partEntry(etag: string, crc32: string | undefined): string {
  return crc32 ? `${etag} ${crc32}` : etag;
}

function parsePart(entry: string): { ETag: string; ChecksumCRC32?: string } {
  const [etag = '', crc32] = entry.split(' ');
  return { ETag: etag, ...(crc32 ? { ChecksumCRC32: crc32 } : {}) };
}

/**
 * A multipart upload that survives its process: every part is recorded as it finishes (its ETag,
 * checksum and the MD5 state of all bytes up to its end), so a later attempt continues from the
 * end of the last whole part. A failure leaves the upload open; only bytes that do not verify
 * abort it. Returns the version id, byte count and MD5 of the whole object.
 */
export async function resumableUpload(
  body: Readable,
  params: ResumableUploadParams,
): Promise<{ versionId?: string; bytes: number; md5: string }> {
  // No abort signal on parts already read: at a deadline they finish and are recorded, not sent again.
  const { s3, bucket, key, partSize, expected, send, spill } = params;
  const from = params.from;
  const hasher = await createMD5();
  if (from?.md5State) hasher.load(Buffer.from(from.md5State, 'base64'));
  else hasher.init();
  // Started with the first part, so a download refused at once leaves no upload behind.
  let uploadId = from?.uploadId;
  const start = async (): Promise<string> => {
    const created = await send(
      () =>
        s3.send(
          new CreateMultipartUploadCommand({
            Bucket: bucket,
            Key: key,
            Metadata: params.metadata,
            ContentType: params.contentType,
            ChecksumAlgorithm: 'CRC32',
          }),
        ),
      `starting the upload of ${key}`,
    );
    if (!created.UploadId) throw new Error(`S3 gave no upload id for ${key}`);
    return created.UploadId;
  };
  const parts = [...(from?.parts ?? [])];
  let bytes = from?.bytes ?? 0;
  const checkpoint = (md5State: Uint8Array, upTo: number): CopyCheckpoint => ({
    key,
    version: params.version,
    bytes: upTo,
    md5State: Buffer.from(md5State).toString('base64'),
    uploadId,
    partSize,
    parts: [...parts],
  });
  const abort = async () => {
    if (uploadId === undefined) return;
    await send(
      () => s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId })),
      `discarding the upload of ${key}`,
    );
  };

  // Parts in flight, in order; the finished ones at the head are recorded as soon as they finish.
  interface PartInFlight {
    number: number;
    end: number;
    md5State: Uint8Array;
    done: Promise<string>;
    entry?: string;
  }
  const inFlight: PartInFlight[] = [];
  let recording: Promise<void> = Promise.resolve();
  let recordError: unknown;
  const record = (): Promise<void> => {
    recording = recording
      .then(async () => {
        while (inFlight[0]?.entry !== undefined) {
          const head = inFlight.shift() as PartInFlight;
          parts[head.number - 1] = head.entry as string;
          // The prefix up to the end of this part is whole: a later attempt continues after it.
          await params.onCheckpoint?.(checkpoint(head.md5State, head.end));
          spill?.drop(head.number);
        }
      })
      .catch((error: unknown) => {
        recordError ??= error;
      });
    return recording;
  };
  const settled = async () => {
    await record();
    if (recordError !== undefined) throw recordError;
  };
  const sendPart = (data: Buffer, number: number, id: string): Promise<string> =>
    send(
      () =>
        s3.send(
          new UploadPartCommand({
            Bucket: bucket,
            Key: key,
            UploadId: id,
            PartNumber: number,
            Body: data,
            ContentLength: data.length,
            ContentMD5: createHash('md5').update(data).digest('base64'),
            ChecksumAlgorithm: 'CRC32',
          }),
        ),
      `uploading part ${number} of ${key}`,
    ).then((answer) => partEntry(answer.ETag ?? '', answer.ChecksumCRC32));
  const startPart = async (data: Buffer) => {
    hasher.update(data);
    bytes += data.length;
    if (expected.bytes !== undefined && bytes > expected.bytes) {
      throw new IntegrityError(`${key}: received more than the ${expected.bytes} bytes the source listed`);
    }
    const number = Math.round((bytes - data.length) / partSize) + 1;
    uploadId ??= await start();
    const part: PartInFlight = { number, end: bytes, md5State: hasher.save(), done: Promise.resolve('') };
    part.done = sendPart(data, number, uploadId).then((entry) => {
      part.entry = entry;
      void record();
      return entry;
    });
    part.done.catch(() => undefined);
    inFlight.push(part);
    const oldest = inFlight[0];
    if (inFlight.length >= params.queueSize && oldest) await oldest.done;
    await settled();
  };

  // Bytes taken so far (kept parts included): the offset in the object of the next one.
  let received = bytes;
  const held = spill ? (from?.spilled ?? 0) : 0;
  try {
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const take = async (chunk: Buffer) => {
      pending.push(chunk);
      pendingBytes += chunk.length;
      received += chunk.length;
      while (pendingBytes >= partSize) {
        const joined = pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending);
        await startPart(joined.subarray(0, partSize));
        const rest = joined.subarray(partSize);
        pending = rest.length > 0 ? [rest] : [];
        pendingBytes = rest.length;
      }
    };
    // What an earlier attempt on this machine received but did not record, then the source's bytes.
    if (spill && held > 0) for (const chunk of spill.read(bytes, held)) await take(chunk);
    for await (const chunk of body as AsyncIterable<Buffer>) {
      // Kept before it is used: a kill from here on does not cost these bytes again.
      spill?.write(received, chunk);
      await take(chunk);
    }
    // The last part may be short (or empty when the checkpoint already held every byte).
    if (pendingBytes > 0) await startPart(Buffer.concat(pending));
    await Promise.all(inFlight.map((part) => part.done));
    await settled();
  } catch (error) {
    // Parts that reached S3 are recorded even now: the next attempt does not send them again.
    await Promise.allSettled(inFlight.map((part) => part.done));
    await record();
    spill?.close();
    if (error instanceof IntegrityError) {
      spill?.discard();
      await abort().catch(() => undefined);
    }
    throw error;
  }
  spill?.discard();

  const md5 = hasher.digest('hex');
  const mismatch =
    expected.bytes !== undefined && bytes !== expected.bytes
      ? `received ${bytes} bytes, the source listed ${expected.bytes}`
      : expected.md5 !== undefined && expected.md5.toLowerCase() !== md5
        ? `MD5 ${md5} does not match the source's etag ${expected.md5}`
        : undefined;
  if (mismatch) {
    spill?.discard();
    // Never completed: the object would become visible with bytes that are not the asset's.
    await abort().catch(() => undefined);
    throw new IntegrityError(`${key}: ${mismatch}`);
  }
  // Every byte was in an earlier attempt's parts, or the object is empty: an upload is still needed.
  const completeId = uploadId ?? (await start());
  const completed = await send(
    () =>
      s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: bucket,
          Key: key,
          UploadId: completeId,
          MultipartUpload: { Parts: parts.map((entry, i) => ({ PartNumber: i + 1, ...parsePart(entry) })) },
        }),
      ),
    `completing the upload of ${key}`,
  );
  return { versionId: completed.VersionId, bytes, md5 };
}

/**
 * Checks a checkpoint against the upload S3 holds (ListParts): every recorded part is there with
 * its ETag and size. False when the upload is gone or differs; the copy then starts over.
 */
export async function uploadMatches(
  s3: S3Client,
  bucket: string,
  checkpoint: CopyCheckpoint,
  send: ResumableUploadParams['send'],
): Promise<boolean> {
  const recorded = checkpoint.parts ?? [];
  const found = new Map<number, { etag?: string; size?: number }>();
  let marker: string | undefined;
  try {
    for (;;) {
      const page = await send(
        () =>
          s3.send(
            new ListPartsCommand({
              Bucket: bucket,
              Key: checkpoint.key,
              UploadId: checkpoint.uploadId,
              PartNumberMarker: marker,
            }),
          ),
        `listing the parts of ${checkpoint.key}`,
      );
      for (const part of page.Parts ?? []) {
        if (part.PartNumber !== undefined) found.set(part.PartNumber, { etag: part.ETag, size: part.Size });
      }
      if (!page.IsTruncated || !page.NextPartNumberMarker) break;
      marker = page.NextPartNumberMarker;
    }
  } catch (error) {
    if ((error as { name?: string }).name === 'NoSuchUpload') return false;
    throw error;
  }
  return recorded.every((entry, i) => {
    const part = found.get(i + 1);
    const last = i === recorded.length - 1;
    const sizeOk = last
      ? part?.size === checkpoint.bytes - i * (checkpoint.partSize ?? 0)
      : part?.size === checkpoint.partSize;
    return part !== undefined && part.etag === parsePart(entry).ETag && sizeOk;
  });
}

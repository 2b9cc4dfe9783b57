import type { BigIntStats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { Verifier } from '../hashing.js';

/**
 * Writes `body` into the file at `path` (opened with `flags`) while `verifier` counts and hashes
 * it, then checks it, sets its time to `mtime` and fsyncs it: once this resolves the bytes are
 * whole, verified and on disk, so a rename may publish them. The chunks go straight from the body
 * to the file (no stream in between: on many small files the layers cost more than the bytes).
 * Returns the file's stat, taken on the open file.
 */
export async function writeVerifiedFile(
  body: Readable,
  path: string,
  flags: string,
  verifier: Verifier,
  options: { signal?: AbortSignal; mtime?: Date } = {},
): Promise<BigIntStats> {
  const { signal, mtime } = options;
  signal?.throwIfAborted();
  const handle = await open(path, flags);
  try {
    await drainInto(body, handle, verifier, signal);
    verifier.finish();
    if (mtime && !Number.isNaN(mtime.getTime())) await handle.utimes(mtime, mtime);
    await handle.sync();
    return await handle.stat({ bigint: true });
  } finally {
    await handle.close();
  }
}

/** Bytes received while a write is going past which the body is paused. */
const MAX_QUEUED_BYTES = 1024 * 1024;

/**
 * Resolves once every chunk of `body` is verified and written. Chunks that arrive while a write is
 * going are queued and written together (one writev), so the body keeps flowing.
 */
function drainInto(
  body: Readable,
  handle: FileHandle,
  verifier: Verifier,
  signal?: AbortSignal,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let queued: Buffer[] = [];
    let queuedBytes = 0;
    let writing = false;
    let paused = false;
    let ended = false;
    let done = false;
    const finish = (error?: unknown): void => {
      if (done) return;
      done = true;
      body.removeListener('data', onData);
      body.removeListener('end', onEnd);
      body.removeListener('error', finish);
      body.removeListener('close', onClose);
      signal?.removeEventListener('abort', onAbort);
      if (error === undefined) resolve();
      else reject(error instanceof Error ? error : new Error(String(error)));
    };
    const pump = (): void => {
      if (writing || done) return;
      if (queued.length === 0) {
        if (ended) finish();
        return;
      }
      const batch = queued;
      queued = [];
      queuedBytes = 0;
      writing = true;
      writeAll(handle, batch).then(() => {
        writing = false;
        if (done) return;
        if (paused) {
          paused = false;
          body.resume();
        }
        pump();
      }, finish);
    };
    const onData = (chunk: Buffer): void => {
      try {
        verifier.update(chunk);
      } catch (error) {
        finish(error);
        return;
      }
      queued.push(chunk);
      queuedBytes += chunk.length;
      if (queuedBytes >= MAX_QUEUED_BYTES && !paused) {
        paused = true;
        body.pause();
      }
      pump();
    };
    // Resolved only after the last write: 'end' may come while one is still going.
    const onEnd = (): void => {
      ended = true;
      pump();
    };
    const onClose = (): void => {
      if (!body.readableEnded) finish(body.errored ?? new Error('the body closed before its end'));
    };
    const onAbort = (): void => finish(signal?.reason);
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('error', finish);
    body.once('close', onClose);
    signal?.addEventListener('abort', onAbort, { once: true });
    // A body that failed before anyone listened has no events left to give.
    if (body.destroyed) onClose();
  });
}

async function writeAll(handle: FileHandle, chunks: Buffer[]): Promise<void> {
  let rest = chunks;
  while (rest.length > 0) {
    const { bytesWritten } = await handle.writev(rest);
    rest = after(rest, bytesWritten);
  }
}

/** What is left of `chunks` once their first `count` bytes are written. */
function after(chunks: Buffer[], count: number): Buffer[] {
  let skip = count;
  let index = 0;
  while (index < chunks.length && skip >= (chunks[index] as Buffer).length) {
    skip -= (chunks[index] as Buffer).length;
    index += 1;
  }
  const rest = chunks.slice(index);
  if (skip > 0 && rest.length > 0) rest[0] = (rest[0] as Buffer).subarray(skip);
  return rest;
}

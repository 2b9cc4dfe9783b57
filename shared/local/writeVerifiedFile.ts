import { close, closeSync, fstatSync, fsync, futimes, open, writev, type BigIntStats } from 'node:fs';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import type { Verifier } from '../hashing.js';

const openFile = promisify(open);
const syncFile = promisify(fsync);
const setTimes = promisify(futimes);
const closeFile = promisify(close);

/**
 * Writes `body` into the file at `path` (opened with `flags`) while `verifier` counts and hashes
 * it, then checks it, sets its time to `mtime` and fsyncs it: once this resolves the bytes are
 * whole, verified and on disk, so a rename may publish them. The chunks go straight from the body
 * to the file (no stream in between: on many small files the layers cost more than the bytes),
 * gathered into writes of `WRITE_BATCH` bytes, so a small file is one write. The file is reached
 * through its descriptor with callbacks, not a FileHandle: per file that is a handful of requests
 * to libuv's pool and nothing more. Returns the file's stat, taken on the open file.
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
  const fd = await openFile(path, flags);
  let stat: BigIntStats;
  try {
    await drainInto(body, fd, verifier, signal);
    verifier.finish();
    if (mtime && !Number.isNaN(mtime.getTime())) await setTimes(fd, mtime, mtime);
    await syncFile(fd);
    // On disk already: the stat and the close have nothing left to wait for.
    stat = fstatSync(fd, { bigint: true });
  } catch (error) {
    await closeFile(fd).catch(() => undefined);
    throw error;
  }
  closeSync(fd);
  return stat;
}

/** Bytes gathered before they are written (a whole small file; larger ones in pieces of this size). */
const WRITE_BATCH = 128 * 1024;
/** Bytes received while a write is going past which the body is paused. */
const MAX_QUEUED_BYTES = 1024 * 1024;

/**
 * Resolves once every chunk of `body` is verified and written. Chunks are gathered and written
 * together (one writev) once `WRITE_BATCH` bytes are queued or the body ends, and the body keeps
 * flowing while a write is going. A body that fails still gets the bytes it delivered written
 * (a resumable copy continues after them) before the failure is passed on.
 */
function drainInto(body: Readable, fd: number, verifier: Verifier, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let queued: Buffer[] = [];
    let queuedBytes = 0;
    let writing = false;
    let paused = false;
    let ended = false;
    /** The body's failure, passed on once what it delivered is written. */
    let failure: { error: unknown } | undefined;
    let done = false;
    const finish = (error?: unknown): void => {
      if (done) return;
      done = true;
      body.removeListener('data', onData);
      body.removeListener('end', onEnd);
      body.removeListener('error', onFailure);
      body.removeListener('close', onClose);
      signal?.removeEventListener('abort', onAbort);
      if (error === undefined) resolve();
      else reject(error instanceof Error ? error : new Error(String(error)));
    };
    const pump = (): void => {
      if (writing || done) return;
      const last = ended || failure !== undefined;
      if (queued.length === 0 || (!last && queuedBytes < WRITE_BATCH)) {
        if (failure) finish(failure.error);
        else if (ended) finish();
        return;
      }
      const batch = queued;
      queued = [];
      queuedBytes = 0;
      writing = true;
      writeAll(fd, batch).then(() => {
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
    const onFailure = (error: unknown): void => {
      failure ??= { error };
      pump();
    };
    const onClose = (): void => {
      if (!body.readableEnded) onFailure(body.errored ?? new Error('the body closed before its end'));
    };
    // Stopped from outside: nothing more is written.
    const onAbort = (): void => finish(signal?.reason);
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('error', onFailure);
    body.once('close', onClose);
    signal?.addEventListener('abort', onAbort, { once: true });
    // A body that failed before anyone listened has no events left to give.
    if (body.destroyed) onClose();
  });
}

function writeChunks(fd: number, chunks: Buffer[]): Promise<number> {
  return new Promise((resolve, reject) => {
    writev(fd, chunks, (error, written) => (error ? reject(error) : resolve(written)));
  });
}

async function writeAll(fd: number, chunks: Buffer[]): Promise<void> {
  let rest = chunks;
  while (rest.length > 0) {
    const written = await writeChunks(fd, rest);
    rest = after(rest, written);
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

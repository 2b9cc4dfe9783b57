import { open, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { Verifier } from '../hashing.js';

/**
 * Writes `body` into the file at `path` (opened with `flags`) while `verifier` counts and hashes
 * it, then checks it and fsyncs the file: once this resolves the bytes are whole, verified and on
 * disk, so a rename may publish them. The chunks go straight from the body to the file (no stream
 * in between: on many small files the layers cost more than the bytes).
 */
export async function writeVerifiedFile(
  body: Readable,
  path: string,
  flags: string,
  verifier: Verifier,
  signal?: AbortSignal,
): Promise<void> {
  signal?.throwIfAborted();
  const handle = await open(path, flags);
  try {
    await drainInto(body, handle, verifier, signal);
    verifier.finish();
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Resolves once every chunk of `body` is verified and written; a write waits for the one before. */
function drainInto(
  body: Readable,
  handle: FileHandle,
  verifier: Verifier,
  signal?: AbortSignal,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let writing: Promise<void> = Promise.resolve();
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
    const onData = (chunk: Buffer): void => {
      try {
        verifier.update(chunk);
      } catch (error) {
        finish(error);
        return;
      }
      body.pause();
      writing = writeAll(handle, chunk).then(() => {
        if (!done) body.resume();
      }, finish);
    };
    // Resolved only after the last write: 'end' may come while it is still going.
    const onEnd = (): void => void writing.then(() => finish());
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

async function writeAll(handle: FileHandle, chunk: Buffer): Promise<void> {
  let offset = 0;
  while (offset < chunk.length) {
    const { bytesWritten } = await handle.write(chunk, offset, chunk.length - offset);
    offset += bytesWritten;
  }
}

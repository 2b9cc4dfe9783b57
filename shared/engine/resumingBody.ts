import { Readable } from 'node:stream';
import { RetryableError, dispositionOf, describeError } from '../errors.js';
import type { AssetSource, SourceAsset } from '../types.js';
import type { Log } from './log.js';

/** Reopenings per attempt; past them the failure is the copy's (retried with backoff). */
const MAX_REOPENS = 10;

/**
 * The asset's bytes from `offset` as one stream: a download that stalls or is cut off (a retryable
 * failure) is reopened with a Range request where it stopped, within this attempt, instead of
 * failing the copy and fetching it again from its checkpoint or from byte 0. `onBytes` counts the
 * bytes as they are handed on. Chunks are pushed as they arrive (no async iterator per chunk: on a
 * library of small files that was a large share of the CPU and of the garbage).
 */
export function resumingBody(
  source: AssetSource,
  asset: SourceAsset,
  offset: number,
  signal: AbortSignal,
  log: Log,
  onBytes?: (count: number) => void,
): Readable {
  let position = offset;
  let reopens = 0;
  let current: Readable | undefined;
  let opening = false;

  const body = new Readable({
    read() {
      if (current) current.resume();
      else if (!opening) void open();
    },
    destroy(error, callback) {
      const stream = current;
      current = undefined;
      stream?.destroy();
      callback(error);
    },
  });

  const fail = (error: unknown, openedAt: number): void => {
    if (body.destroyed) return;
    // Only a body cut off after new bytes is continued at once; a refused open backs off as before.
    const progressed = position > openedAt;
    if (signal.aborted || !progressed || dispositionOf(error) !== 'retry' || ++reopens > MAX_REOPENS) {
      body.destroy(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    log.info('download interrupted, continuing from where it stopped', {
      publicId: asset.publicId,
      offset: position,
      error: describeError(error),
    });
    void open();
  };

  const open = async (): Promise<void> => {
    opening = true;
    const openedAt = position;
    let stream: Readable;
    try {
      stream = (await source.open(asset, { signal, ...(position > 0 ? { offset: position } : {}) })).stream;
    } catch (error) {
      opening = false;
      fail(error, openedAt);
      return;
    }
    opening = false;
    if (body.destroyed) {
      stream.destroy();
      return;
    }
    current = stream;
    let settled = false;
    const settle = (error?: unknown): void => {
      if (settled) return;
      settled = true;
      stream.removeListener('data', onData);
      if (current === stream) current = undefined;
      if (error === undefined) body.push(null);
      else fail(error, openedAt);
    };
    const onData = (chunk: Buffer): void => {
      position += chunk.length;
      onBytes?.(chunk.length);
      if (!body.push(chunk)) stream.pause();
    };
    stream.on('data', onData);
    stream.once('end', () => settle());
    stream.once('error', (error) => settle(error));
    // A body that closes without its end or an error was cut off.
    stream.once('close', () => {
      if (!settled)
        settle(new RetryableError(`download of ${asset.publicId}: the body closed before its end`));
    });
  };

  return body;
}

import { Readable } from 'node:stream';
import { dispositionOf, describeError } from '../errors.js';
import type { AssetSource, SourceAsset } from '../types.js';
import type { Log } from './log.js';

/** Reopenings per attempt; past them the failure is the copy's (retried with backoff). */
const MAX_REOPENS = 10;

/**
 * The asset's bytes from `offset` as one stream: a download that stalls or is cut off (a retryable
 * failure) is reopened with a Range request where it stopped, within this attempt, instead of
 * failing the copy and fetching it again from its checkpoint or from byte 0.
 */
export function resumingBody(
  source: AssetSource,
  asset: SourceAsset,
  offset: number,
  signal: AbortSignal,
  log: Log,
): Readable {
  async function* bytes(): AsyncGenerator<Buffer> {
    let position = offset;
    let reopens = 0;
    for (;;) {
      const openedAt = position;
      try {
        const opened = await source.open(asset, { signal, ...(position > 0 ? { offset: position } : {}) });
        for await (const chunk of opened.stream as AsyncIterable<Buffer>) {
          position += chunk.length;
          yield chunk;
        }
        return;
      } catch (error) {
        // Only a body cut off after new bytes is continued at once; a refused open backs off as before.
        const progressed = position > openedAt;
        if (signal.aborted || !progressed || dispositionOf(error) !== 'retry' || ++reopens > MAX_REOPENS)
          throw error;
        log.info('download interrupted, continuing from where it stopped', {
          publicId: asset.publicId,
          offset: position,
          error: describeError(error),
        });
      }
    }
  }
  return Readable.from(bytes(), { objectMode: false });
}

import type { Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/** A shared byte budget per second (token bucket), like rclone's --bwlimit: all transfers draw from it. */
export class BandwidthLimit {
  private available: number;
  private last: number;

  constructor(
    readonly bytesPerSecond: number,
    private readonly now: () => number = Date.now,
  ) {
    this.available = bytesPerSecond / 10;
    this.last = now();
  }

  /** Waits until `count` bytes may pass. */
  async take(count: number, signal?: AbortSignal): Promise<void> {
    for (;;) {
      const at = this.now();
      // At most a tenth of a second of burst, so the limit holds over short windows too.
      this.available = Math.min(
        this.bytesPerSecond / 10,
        this.available + ((at - this.last) / 1000) * this.bytesPerSecond,
      );
      this.last = at;
      if (this.available >= Math.min(count, this.bytesPerSecond / 10)) {
        this.available -= count;
        return;
      }
      signal?.throwIfAborted();
      const waitMs = Math.max(10, ((count - this.available) / this.bytesPerSecond) * 1000);
      await new Promise((resolve) => setTimeout(resolve, Math.min(waitMs, 200)));
    }
  }
}

/** Parses `--bwlimit` values: `500k`, `2M`, `1.5MiB`, `1048576` (bytes per second, binary units). */
export function parseByteRate(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?(?:\/s)?\s*$/iu.exec(text);
  if (!match) return undefined;
  const power = ' kmgt'.indexOf((match[2] || ' ').toLowerCase());
  const value = Number(match[1]) * 1024 ** power;
  return value > 0 ? Math.floor(value) : undefined;
}

/**
 * Feeds every chunk into an MD5 that may already hold a resumed prefix, counts it, reports it,
 * and holds it back while the bandwidth limit says so. Memory stays at one chunk in flight.
 */
export class TransferMeter extends Transform {
  bytes = 0;

  constructor(
    private readonly hash: Hash,
    private readonly onBytes: (count: number) => void,
    private readonly limit?: BandwidthLimit,
    private readonly signal?: AbortSignal,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const pass = (): void => {
      this.hash.update(chunk);
      this.bytes += chunk.length;
      this.onBytes(chunk.length);
      callback(null, chunk);
    };
    if (!this.limit) {
      pass();
      return;
    }
    this.limit.take(chunk.length, this.signal).then(pass, (error: unknown) => callback(error as Error));
  }
}

import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { SourceAsset, WorkItem } from '../../shared/types.js';

/** Deterministic bytes: the same (size, seed) always gives the same content. */
export function bytesOf(size: number, seed = 1): Buffer {
  const out = Buffer.alloc(size);
  let x = seed * 2654435761 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export function md5Of(data: Buffer | string): string {
  return createHash('md5').update(data).digest('hex');
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

/** A body that yields `data` in `chunk`-sized pieces. */
export function bodyOf(data: Buffer, chunk = 64 * 1024): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < data.length; i += chunk) yield data.subarray(i, i + chunk);
    })(),
    { objectMode: false },
  );
}

/** A body that sends `before` bytes and then fails, like a download cut off midway. */
export function failingBody(before: number, chunk = 256 * 1024): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= before) {
        this.destroy(new Error('connection reset by the source'));
        return;
      }
      const size = Math.min(chunk, before - sent);
      this.push(bytesOf(size, sent + 7));
      sent += size;
    },
  });
}

/** A body that trickles data and never ends on its own (until destroyed). */
export function endlessBody(chunk = 16 * 1024, everyMs = 5): Readable {
  let timer: NodeJS.Timeout | undefined;
  return new Readable({
    read() {
      timer = setTimeout(() => this.push(bytesOf(chunk, 3)), everyMs);
    },
    destroy(error, callback) {
      clearTimeout(timer);
      callback(error);
    },
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Public ids that break naive key mapping: unicode, separators, dot segments, very long ones. */
export const AWKWARD_PUBLIC_IDS = [
  'café/naïve façade',
  '東京/夜景 🌃',
  'مرحبا/بالعالم',
  'percent %20 and %2F literal',
  'hash#tag?query=1&x=2',
  '../../etc/passwd',
  './.hidden/..',
  'a//double//slash/',
  '/leading',
  'trailing/',
  'back\\slash:colon*star"quote<lt>|pipe',
  'control\u0001char\ttab',
  'CaseFold',
  'casefold',
  'e\u0301 (decomposed)',
  '\u00e9 (composed)',
  'long-'.repeat(220),
];

export function sampleAsset(publicId: string, overrides: Partial<SourceAsset> = {}): SourceAsset {
  return {
    resourceType: 'image',
    deliveryType: 'upload',
    publicId,
    assetId: `id-${md5Of(publicId).slice(0, 12)}`,
    version: 1_700_000_000,
    format: 'jpg',
    bytes: 1234,
    etag: md5Of(publicId),
    createdAt: '2024-01-02T03:04:05Z',
    ...overrides,
  };
}

export function workItems(count: number, runId = 'run-1'): WorkItem[] {
  return Array.from({ length: count }, (_, i) => ({ runId, asset: sampleAsset(`batch/item-${i}`) }));
}

/** A clock the test moves by hand: leases and visibility expire when the test says, not when a loaded box gets round to it. */
export interface ManualClock {
  now: () => Date;
  nowMs: () => number;
  advance: (ms: number) => void;
}

export function manualClock(start = Date.parse('2024-05-01T00:00:00.000Z')): ManualClock {
  let at = start;
  return {
    now: () => new Date(at),
    nowMs: () => at,
    advance: (ms: number) => {
      at += ms;
    },
  };
}

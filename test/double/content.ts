import { createCipheriv, createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { ContentRef } from './types.js';

/**
 * Asset bytes are never stored: chunk i of (seed, asset_id, version) is a slice of one shared
 * pseudo-random pool, at an offset picked by a hash of (content key, i). No per-byte JS work, so a
 * 5 GiB video streams at socket speed and costs no memory.
 */
export const CONTENT_CHUNK_BYTES = 64 * 1024;
const POOL_BYTES = 8 * 1024 * 1024;
const HASH_YIELD_BYTES = 8 * 1024 * 1024;

let pool: Buffer | undefined;

function sharedPool(): Buffer {
  // AES-CTR keystream under a fixed key: fast, and the same bytes in every process.
  pool ??= createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16, 3)).update(
    Buffer.alloc(POOL_BYTES + CONTENT_CHUNK_BYTES),
  );
  return pool;
}

export interface ContentKey {
  readonly k0: number;
  readonly k1: number;
}

export function contentKey(seed: string, ref: ContentRef): ContentKey {
  const digest = createHash('md5').update(`${seed}\0${ref.asset_id}\0${ref.version}`).digest();
  return { k0: digest.readUInt32LE(0), k1: digest.readUInt32LE(4) };
}

function chunkOffset(key: ContentKey, index: number): number {
  let h = Math.imul(index ^ key.k0, 0x85ebca6b) ^ key.k1;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h ^ (index >>> 16), 0x27d4eb2d);
  h ^= h >>> 15;
  return (h >>> 0) % POOL_BYTES;
}

/** The content bytes in [start, endExclusive), as slices of the shared pool (never write into them). */
export function* contentSlices(
  seed: string,
  ref: ContentRef,
  start = 0,
  endExclusive = ref.bytes,
): Generator<Buffer, void, undefined> {
  const data = sharedPool();
  const key = contentKey(seed, ref);
  const end = Math.min(endExclusive, ref.bytes);
  let position = Math.max(0, start);
  while (position < end) {
    const index = Math.floor(position / CONTENT_CHUNK_BYTES);
    const within = position - index * CONTENT_CHUNK_BYTES;
    const length = Math.min(CONTENT_CHUNK_BYTES - within, end - position);
    const offset = chunkOffset(key, index) + within;
    yield data.subarray(offset, offset + length);
    position += length;
  }
}

export function contentReadable(
  seed: string,
  ref: ContentRef,
  start?: number,
  endInclusive?: number,
): Readable {
  const end = endInclusive === undefined ? ref.bytes : endInclusive + 1;
  return Readable.from(contentSlices(seed, ref, start ?? 0, end), { objectMode: false });
}

/** MD5 hex of the whole content, yielding to the event loop every few MB so serving goes on. */
export async function hashContent(seed: string, ref: ContentRef): Promise<string> {
  const hash = createHash('md5');
  let sinceYield = 0;
  for (const slice of contentSlices(seed, ref)) {
    hash.update(slice);
    sinceYield += slice.length;
    if (sinceYield >= HASH_YIELD_BYTES) {
      sinceYield = 0;
      await yieldToEventLoop();
    }
  }
  return hash.digest('hex');
}

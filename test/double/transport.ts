import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FaultPlan } from './FaultBoard.js';

/** Resolves after `ms`, or at once when `signal` aborts (the double is closing). */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}

function waitForDrain(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

async function flushed(socket: Socket | null, signal: AbortSignal): Promise<void> {
  for (let i = 0; socket !== null && !socket.destroyed && socket.writableLength > 0 && i < 500; i += 1) {
    await sleep(2, signal);
  }
}

/** What a body write should do besides writing: the stream-level faults. */
export interface BodyOptions {
  plan: FaultPlan;
  /** Announced body length (Content-Length). */
  length: number;
  /** Content offset of the body's first byte (a Range start), to place a corruption. */
  contentStart: number;
  /** Whole content length, to place the default (middle) corruption. */
  contentLength: number;
  signal: AbortSignal;
}

/**
 * Writes `slices` with backpressure, applying bandwidth caps, corruption, resets and early closes.
 * Returns the body bytes handed to the socket.
 */
export async function writeBody(
  res: ServerResponse,
  slices: Iterable<Buffer>,
  options: BodyOptions,
): Promise<number> {
  const { plan, signal } = options;
  const shortAt = plan.shortAfterBytes === null ? Math.floor(options.length / 2) : plan.shortAfterBytes;
  const cutAt = Math.min(plan.resetAfterBytes ?? Infinity, shortAt ?? Infinity);
  const corruptContentAt = plan.corruptAt === null ? Math.floor(options.contentLength / 2) : plan.corruptAt;
  const corruptBodyAt = corruptContentAt === undefined ? undefined : corruptContentAt - options.contentStart;
  const rate = plan.bytesPerSecond;
  // Small pieces keep a low cap smooth.
  const pieceBytes = rate === undefined ? Infinity : Math.max(1, Math.floor(rate / 20));
  const started = performance.now();
  let written = 0;

  if (cutAt <= 0) res.flushHeaders();
  for (const source of slices) {
    if (written >= cutAt || res.destroyed || signal.aborted) break;
    let slice = source;
    if (corruptBodyAt !== undefined && corruptBodyAt >= written && corruptBodyAt < written + slice.length) {
      slice = Buffer.from(slice);
      slice[corruptBodyAt - written] = (slice[corruptBodyAt - written] ?? 0) ^ 0xff;
    }
    if (written + slice.length > cutAt) slice = slice.subarray(0, cutAt - written);
    for (let offset = 0; offset < slice.length; offset += pieceBytes) {
      const piece = pieceBytes === Infinity ? slice : slice.subarray(offset, offset + pieceBytes);
      if (rate !== undefined) {
        await sleep(started + ((written + piece.length) / rate) * 1000 - performance.now(), signal);
      }
      if (res.destroyed || signal.aborted) return written;
      const more = res.write(piece);
      written += piece.length;
      if (!more) await waitForDrain(res);
      if (pieceBytes === Infinity) break;
    }
  }

  if (written >= cutAt && cutAt < options.length) {
    const socket = res.socket;
    await flushed(socket, signal);
    if (plan.resetAfterBytes !== undefined && plan.resetAfterBytes <= (shortAt ?? Infinity)) {
      socket?.resetAndDestroy();
    } else {
      // Content-Length promised more: a clean FIN mid-body.
      socket?.end();
      socket?.once('finish', () => socket.destroy());
    }
    return written;
  }
  if (!res.destroyed) res.end();
  return written;
}

export interface ByteRange {
  start: number;
  /** Inclusive. */
  end: number;
}

/** One `bytes=` range; undefined for none or several (served whole); 'unsatisfiable' for 416. */
export function parseRange(
  header: string | undefined,
  size: number,
): ByteRange | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return undefined;
  const [, from = '', to = ''] = match;
  if (from === '' && to === '') return undefined;
  if (from === '') {
    const suffix = Number(to);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(from);
  const end = to === '' ? size - 1 : Math.min(Number(to), size - 1);
  if (to !== '' && Number(to) < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

const MIME_TYPES: Record<string, string> = {
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  gif: 'image/gif',
  heic: 'image/heic',
  mp4: 'video/mp4',
  mov: 'video/quicktime',
  webm: 'video/webm',
  mp3: 'audio/mpeg',
  pdf: 'application/pdf',
  zip: 'application/zip',
  json: 'application/json',
  txt: 'text/plain',
  csv: 'text/csv',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
};

export function mimeTypeOf(formatOrPath: string | undefined): string {
  const extension = (formatOrPath ?? '').slice((formatOrPath ?? '').lastIndexOf('.') + 1).toLowerCase();
  return MIME_TYPES[extension] ?? 'application/octet-stream';
}

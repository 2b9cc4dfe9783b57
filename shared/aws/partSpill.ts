import { createHash } from 'node:crypto';
import {
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { rm, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** Files left by a process that died are swept after this long (the next attempt is usually sooner). */
const SWEEP_AFTER_MS = 24 * 3600 * 1000;
const swept = new Set<string>();

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/**
 * The parts of a resumable upload not yet recorded, kept in files as their bytes arrive: a process
 * killed mid-part (kill -9, a crash) leaves them to the next attempt on this machine, which reads them
 * back instead of fetching them from the source again. A part's file is removed once the part is
 * recorded. Files are named after the bucket, key, version and part size (the bytes at an offset of
 * one version never change) and the part number. Failing to write only stops the keeping.
 */
export class PartSpill {
  private readonly prefix: string;
  private fd: number | undefined;
  private fdPart = 0;
  private broken = false;

  constructor(
    private readonly dir: string,
    identity: { bucket: string; key: string; version: number },
    readonly partSize: number,
  ) {
    const { bucket, key, version } = identity;
    this.prefix = createHash('sha256')
      .update(JSON.stringify([bucket, key, version, partSize]))
      .digest('hex')
      .slice(0, 40);
    sweepOnce(dir);
  }

  private path(part: number): string {
    return join(this.dir, `${this.prefix}.${part}`);
  }

  /** Bytes kept from `offset` (a part boundary) on, whole parts then at most one short one, up to `limit`. */
  held(offset: number, limit: number): number {
    let total = 0;
    for (let part = Math.floor(offset / this.partSize) + 1; total < limit; part++) {
      const size = sizeOf(this.path(part));
      if (size === 0 || size > this.partSize) break;
      total += size;
      if (size < this.partSize) break;
    }
    return Math.min(total, limit);
  }

  /** The `length` kept bytes from `offset`, part by part. */
  *read(offset: number, length: number): Generator<Buffer> {
    let left = length;
    for (let part = Math.floor(offset / this.partSize) + 1; left > 0; part++) {
      const data = readFileSync(this.path(part));
      const piece = data.length > left ? data.subarray(0, left) : data;
      if (piece.length === 0) throw new Error(`kept part ${part} of an upload is missing`);
      left -= piece.length;
      yield piece;
    }
  }

  /** Keeps `chunk`, the bytes at `offset` of the object (written in order). */
  write(offset: number, chunk: Buffer): void {
    if (this.broken) return;
    try {
      let at = offset;
      let rest = chunk;
      while (rest.length > 0) {
        const part = Math.floor(at / this.partSize) + 1;
        const inPart = at - (part - 1) * this.partSize;
        if (this.fd === undefined || this.fdPart !== part) {
          this.close();
          // Private: the bytes of private and authenticated assets stay with this user.
          mkdirSync(this.dir, { recursive: true, mode: 0o700 });
          // A part started afresh replaces what an older attempt left; a kept one is continued.
          this.fd = openSync(this.path(part), inPart === 0 ? 'w' : 'r+', 0o600);
          this.fdPart = part;
        }
        const piece = rest.subarray(0, Math.min(rest.length, this.partSize - inPart));
        writeSync(this.fd, piece, 0, piece.length, inPart);
        at += piece.length;
        rest = rest.subarray(piece.length);
      }
    } catch {
      // A full or read-only disk costs only the keeping: the copy goes on.
      this.broken = true;
      this.close();
    }
  }

  /** The part is recorded in the checkpoint: its file is no longer needed. */
  drop(part: number): void {
    if (this.fdPart === part) this.close();
    try {
      unlinkSync(this.path(part));
    } catch {
      // already gone
    }
  }

  /** Removes every kept part of this upload (the copy finished, or its bytes did not verify). */
  discard(): void {
    this.close();
    for (const name of listing(this.dir)) {
      if (!name.startsWith(`${this.prefix}.`)) continue;
      try {
        unlinkSync(join(this.dir, name));
      } catch {
        // already gone
      }
    }
  }

  close(): void {
    if (this.fd === undefined) return;
    try {
      closeSync(this.fd);
    } catch {
      // nothing to do
    }
    this.fd = undefined;
  }
}

function listing(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Once per process and folder: removes parts kept by copies nobody continued. */
function sweepOnce(dir: string): void {
  if (swept.has(dir)) return;
  swept.add(dir);
  void (async () => {
    const now = Date.now();
    for (const name of await readdir(dir)) {
      const path = join(dir, name);
      const info = await stat(path);
      if (now - info.mtimeMs > SWEEP_AFTER_MS) await rm(path, { force: true });
    }
  })().catch(() => undefined);
}

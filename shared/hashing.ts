import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { IntegrityError } from './errors.js';

export interface Expected {
  bytes?: number;
  /** MD5 hex; compared case-insensitively. */
  md5?: string;
}

/**
 * Counts bytes and computes their MD5 as they pass, and checks them against what was expected:
 * `update` refuses a byte past the expected count, `finish` any other difference. A consumer that
 * commits only after `finish` (multipart complete, rename) never commits wrong bytes.
 */
export class Verifier {
  private readonly hash: Hash;
  private count: number;
  private digest?: string;

  /** `start`: a resumed copy, the hash and count of the bytes kept before the first byte given here. */
  constructor(
    private readonly expected: Expected = {},
    private readonly label = 'asset',
    start?: { hash: Hash; bytes: number },
  ) {
    this.hash = start?.hash ?? createHash('md5');
    this.count = start?.bytes ?? 0;
  }

  get bytes(): number {
    return this.count;
  }

  /** The MD5 hex of everything that passed; available once finished. */
  get md5(): string {
    if (this.digest === undefined) throw new Error('MD5 read before the stream ended');
    return this.digest;
  }

  /** Takes the next chunk; throws (an IntegrityError) when it goes past the expected size. */
  update(chunk: Buffer): void {
    this.count += chunk.length;
    if (this.expected.bytes !== undefined && this.count > this.expected.bytes) {
      throw new IntegrityError(
        `${this.label}: received more than the ${this.expected.bytes} bytes the source listed`,
      );
    }
    this.hash.update(chunk);
  }

  /** Ends the input; throws (an IntegrityError) unless the size and MD5 are what was expected. */
  finish(): void {
    this.digest = this.hash.digest('hex');
    const { bytes, md5 } = this.expected;
    if (bytes !== undefined && this.count !== bytes) {
      throw new IntegrityError(`${this.label}: received ${this.count} bytes, the source listed ${bytes}`);
    }
    if (md5 !== undefined && md5.toLowerCase() !== this.digest) {
      throw new IntegrityError(`${this.label}: MD5 ${this.digest} does not match the source's etag ${md5}`);
    }
  }
}

/**
 * Passes bytes through a Verifier: when the input ends it checks them against what was expected
 * and fails the stream on any difference, so a consumer that commits only on a clean end
 * (multipart complete, rename) never commits wrong bytes.
 */
export class VerifyingStream extends Transform {
  private readonly verifier: Verifier;

  /** `start`: a resumed copy, the hash and count of the bytes kept before this stream's first byte. */
  constructor(expected: Expected = {}, label = 'asset', start?: { hash: Hash; bytes: number }) {
    super();
    this.verifier = new Verifier(expected, label, start);
  }

  get bytes(): number {
    return this.verifier.bytes;
  }

  /** The MD5 hex of everything that passed; available once the stream has ended. */
  get md5(): string {
    return this.verifier.md5;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.verifier.update(chunk);
    } catch (error) {
      callback(error as Error);
      return;
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.verifier.finish();
    } catch (error) {
      callback(error as Error);
      return;
    }
    callback();
  }
}

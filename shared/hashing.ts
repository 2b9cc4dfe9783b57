import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { IntegrityError } from './errors.js';

export interface Expected {
  bytes?: number;
  /** MD5 hex; compared case-insensitively. */
  md5?: string;
}

/**
 * Passes bytes through while counting them and computing their MD5. When the input ends it
 * checks them against what was expected and fails the stream on any difference, so a consumer
 * that commits only on a clean end (multipart complete, rename) never commits wrong bytes.
 */
export class VerifyingStream extends Transform {
  private readonly hash: Hash;
  private count: number;
  private digest?: string;

  /** `start`: a resumed copy, the hash and count of the bytes kept before this stream's first byte. */
  constructor(
    private readonly expected: Expected = {},
    private readonly label = 'asset',
    start?: { hash: Hash; bytes: number },
  ) {
    super();
    this.hash = start?.hash ?? createHash('md5');
    this.count = start?.bytes ?? 0;
  }

  get bytes(): number {
    return this.count;
  }

  /** The MD5 hex of everything that passed; available once the stream has ended. */
  get md5(): string {
    if (this.digest === undefined) throw new Error('MD5 read before the stream ended');
    return this.digest;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.count += chunk.length;
    if (this.expected.bytes !== undefined && this.count > this.expected.bytes) {
      callback(
        new IntegrityError(
          `${this.label}: received more than the ${this.expected.bytes} bytes the source listed`,
        ),
      );
      return;
    }
    this.hash.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.digest = this.hash.digest('hex');
    const { bytes, md5 } = this.expected;
    if (bytes !== undefined && this.count !== bytes) {
      callback(new IntegrityError(`${this.label}: received ${this.count} bytes, the source listed ${bytes}`));
      return;
    }
    if (md5 !== undefined && md5.toLowerCase() !== this.digest) {
      callback(
        new IntegrityError(`${this.label}: MD5 ${this.digest} does not match the source's etag ${md5}`),
      );
      return;
    }
    callback();
  }
}

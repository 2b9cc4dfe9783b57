import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Library, loadSdkFor, startCloudinaryDouble } from './double/index.js';
import type { CloudinaryDouble, CloudinarySdk } from './double/index.js';

type Answer = Record<string, unknown>;

function md5(data: Buffer): string {
  return createHash('md5').update(data).digest('hex');
}

/** Streams `data` through the SDK's chunked upload (what upload_large does) and returns its answer. */
async function uploadChunked(
  cloudinary: CloudinarySdk,
  data: Buffer,
  options: Record<string, unknown>,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const stream = cloudinary.uploader.upload_chunked_stream(options, (error, result) =>
      error ? reject(error) : resolve(result as unknown as Answer),
    );
    pipeline(Readable.from([data]), stream).catch(reject);
  });
}

function upload(cloudinary: CloudinarySdk, data: Buffer, options: Record<string, unknown>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const stream = cloudinary.uploader.upload_stream(options, (error, result) =>
      error ? reject(error) : resolve(result as unknown as Answer),
    );
    stream.end(data);
  });
}

describe('the double’s signed Upload API, reached by the real SDK', () => {
  let double: CloudinaryDouble;
  let cloudinary: CloudinarySdk;

  beforeAll(async () => {
    double = await startCloudinaryDouble({
      library: new Library('upload'),
      uploadLimits: {
        maxRequestBytes: 64 * 1024,
        maxFileBytes: { image: 200 * 1024, video: 1024 * 1024, raw: 1024 },
      },
    });
    cloudinary = await loadSdkFor(double);
  });
  afterAll(async () => double?.close());

  it('stores the uploaded bytes under the given public id, type, tags, context and metadata, and answers their MD5 as etag', async () => {
    const data = randomBytes(10_000);

    const answer = await upload(cloudinary, data, {
      public_id: 'folder/with space & more',
      type: 'private',
      tags: ['a', 'b'],
      context: { alt: 'x=y|z', caption: 'c' },
      metadata: { rating: 4, colors: ['red', 'green'] },
      filename: 'x.png',
      overwrite: false,
    });

    expect(answer).toMatchObject({
      public_id: 'folder/with space & more',
      type: 'private',
      bytes: 10_000,
      etag: md5(data),
      format: 'png',
    });
    const stored = double.library.get('image', 'private', 'folder/with space & more');
    expect(stored).toMatchObject({
      tags: ['a', 'b'],
      context: { alt: 'x=y|z', caption: 'c' },
      metadata: { rating: 4, colors: ['red', 'green'] },
    });
    expect(await double.library.md5Of(stored as never)).toBe(md5(data));
  });

  it('assembles a chunked upload from X-Unique-Upload-Id and Content-Range requests', async () => {
    const data = randomBytes(150_000);
    const before = double.counters.uploadRequests;

    const answer = await uploadChunked(cloudinary, data, {
      public_id: 'big',
      chunk_size: 50_000,
      filename: 'big.jpg',
    });

    expect(double.counters.uploadRequests - before).toBe(3);
    expect(answer).toMatchObject({ public_id: 'big', bytes: 150_000, etag: md5(data) });
  });

  it('refuses a request over the per-request limit (413) and a file over the plan’s limit with Cloudinary’s words', async () => {
    await expect(upload(cloudinary, randomBytes(100_000), { public_id: 'one-go' })).rejects.toMatchObject({
      http_code: 413,
    });
    await expect(
      uploadChunked(cloudinary, randomBytes(250_000), { public_id: 'too-big', chunk_size: 50_000 }),
    ).rejects.toMatchObject({
      http_code: 400,
      message: expect.stringMatching(/File size too large\. Got \d+\. Maximum is 204800\./u) as unknown,
    });
  });

  it('refuses a wrong signature and a timestamp more than an hour off', async () => {
    await expect(
      upload(cloudinary, randomBytes(10), { public_id: 'x', api_secret: 'wrong' }),
    ).rejects.toMatchObject({ http_code: 401 });
    const stale = Math.floor(Date.now() / 1000) - 7200;
    await expect(
      upload(cloudinary, randomBytes(10), { public_id: 'x', timestamp: stale }),
    ).rejects.toMatchObject({
      http_code: 400,
      message: expect.stringMatching(/Stale request/u) as unknown,
    });
  });

  it('with overwrite=false answers an existing asset unchanged (flagged existing); signed uploads overwrite by default', async () => {
    const first = await upload(cloudinary, randomBytes(1000), { public_id: 'kept', filename: 'kept.jpg' });

    const again = await upload(cloudinary, randomBytes(2000), { public_id: 'kept', overwrite: false });
    expect(again).toMatchObject({ existing: true, version: first.version, etag: first.etag, bytes: 1000 });

    double.clock.advance(2000);
    const replaced = randomBytes(3000);
    const overwritten = await upload(cloudinary, replaced, { public_id: 'kept', filename: 'kept.jpg' });
    expect(overwritten).toMatchObject({ bytes: 3000, etag: md5(replaced) });
    expect(Number(overwritten.version)).toBeGreaterThan(Number(first.version));
    expect(overwritten.existing).toBeUndefined();
  });

  it('deletes assets through the Admin API as api.delete_resources calls it', async () => {
    await upload(cloudinary, randomBytes(100), { public_id: 'doomed/one', filename: 'one.jpg' });

    const answer = await cloudinary.api.delete_resources(['doomed/one', 'doomed/never'], {
      resource_type: 'image',
      type: 'upload',
    });

    expect(answer).toMatchObject({
      deleted: { 'doomed/one': 'deleted', 'doomed/never': 'not_found' },
      partial: false,
    });
    expect(double.library.get('image', 'upload', 'doomed/one')).toBeUndefined();
  });
});

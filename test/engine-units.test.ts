import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normalizeSdkError, resetFromMessage, nextHour } from '../shared/cloudinary/errors.js';
import { parseCloudinaryUrl, settingsFromEnv } from '../shared/config.js';
import { needsTransfer } from '../shared/engine/decide.js';
import {
  AssetGoneError,
  ConfigError,
  FatalError,
  IntegrityError,
  RateLimitedError,
  RetryableError,
  describeError,
  dispositionOf,
} from '../shared/errors.js';
import { VerifyingStream } from '../shared/hashing.js';
import { assetState, sourceAsset } from './support/assetFactories.js';

const asset = sourceAsset;
const state = assetState;

describe('the transfer decision', () => {
  it('copies an asset only when it is new, changed, or its last copy did not succeed', () => {
    expect(needsTransfer(asset(), undefined)).toBe(true);
    expect(needsTransfer(asset(), state())).toBe(false);
    expect(needsTransfer(asset({ version: 11 }), state())).toBe(true);
    expect(needsTransfer(asset({ bytes: 101 }), state())).toBe(true);
    expect(needsTransfer(asset(), state({ status: 'failed' }))).toBe(true);
    expect(needsTransfer(asset(), state({ status: 'deleted-at-source' }))).toBe(true);
  });

  it('does not retry a quarantined version until its version or size changes, or a redrive asks', () => {
    const refused = state({ status: 'quarantined' });
    const besideCopy = state({ version: 9, quarantinedVersion: 10, quarantinedBytes: 100 });

    expect(needsTransfer(asset(), refused)).toBe(false);
    expect(needsTransfer(asset(), besideCopy)).toBe(false);
    expect(needsTransfer(asset({ version: 11 }), refused)).toBe(true);
    expect(needsTransfer(asset({ bytes: 101 }), besideCopy)).toBe(true);
    expect(needsTransfer(asset(), refused, { redrive: true })).toBe(true);
    expect(needsTransfer(asset(), besideCopy, { redrive: true })).toBe(true);
  });

  it('never skips an asset whose version or size differs from the recorded copy', () => {
    fc.assert(
      fc.property(fc.nat(), fc.nat(), fc.nat(), fc.nat(), (v1, v2, b1, b2) => {
        const decision = needsTransfer(asset({ version: v1, bytes: b1 }), state({ version: v2, bytes: b2 }));
        expect(decision).toBe(v1 !== v2 || b1 !== b2);
      }),
    );
  });
});

describe('Cloudinary errors, normalised', () => {
  const fallback = () => new Date('2030-01-01T01:00:00Z');

  it('reads the reset time from a 420 message when the headers are missing', () => {
    const raw = {
      error: {
        message:
          'Rate Limit Exceeded. Limit of 500 api operations reached. Try again on 2025-08-08 17:00:00 UTC',
        http_code: 420,
      },
      request_options: { auth: 'key:very-secret' },
    };
    const error = normalizeSdkError(raw, 'listing', fallback);

    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).resetAt.toISOString()).toBe('2025-08-08T17:00:00.000Z');
    expect(error.message).not.toContain('very-secret');
  });

  it('treats 429 like 420 and falls back to the known reset time', () => {
    const error = normalizeSdkError({ error: { message: 'Too many', http_code: 429 } }, 'listing', fallback);
    expect((error as RateLimitedError).resetAt).toEqual(fallback());
  });

  it('makes bad credentials fatal with advice, 5xx and socket errors retryable, 404 gone', () => {
    expect(
      normalizeSdkError({ error: { message: 'Invalid api_key', http_code: 401 } }, 'l', fallback),
    ).toBeInstanceOf(FatalError);
    expect(
      normalizeSdkError(
        { message: 'Server returned unexpected status code - 503', http_code: 503 },
        'l',
        fallback,
      ),
    ).toBeInstanceOf(RetryableError);
    expect(
      normalizeSdkError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), 'l', fallback),
    ).toBeInstanceOf(RetryableError);
    expect(normalizeSdkError({ error: { message: 'nope', http_code: 404 } }, 'l', fallback)).toBeInstanceOf(
      AssetGoneError,
    );
    expect(normalizeSdkError({ error: { message: 'bad', http_code: 401 } }, 'l', fallback).message).toContain(
      'CLOUDINARY_URL',
    );
  });

  it('parses only well-formed reset dates and rounds other fallbacks to the next hour', () => {
    expect(resetFromMessage('Try again on 2025-13-45 99:00:00 UTC')).toBeUndefined();
    expect(resetFromMessage('no date here')).toBeUndefined();
    expect(nextHour(new Date('2025-01-01T10:59:59Z')).toISOString()).toBe('2025-01-01T11:00:00.000Z');
  });

  it('classifies AWS and socket errors by what to do with them', () => {
    expect(dispositionOf(Object.assign(new Error('x'), { name: 'NoSuchBucket' }))).toBe('fatal');
    expect(
      dispositionOf(
        Object.assign(new Error('x'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } }),
      ),
    ).toBe('retry');
    expect(dispositionOf(Object.assign(new Error('x'), { code: 'ECONNRESET' }))).toBe('retry');
    expect(dispositionOf(new IntegrityError('md5'))).toBe('retry');
  });

  it('never lets credentials or signatures into a description', () => {
    const text = describeError(
      new Error(
        'GET https://x/download?api_key=1&signature=abcdef0123 cloudinary://k:s@c /s--AbCdEfGh--/v1/a',
      ),
    );
    expect(text).not.toMatch(/abcdef0123|k:s@|AbCdEfGh/u);
  });
});

describe('configuration', () => {
  it('reads the API origin and delivery origin from CLOUDINARY_URL', () => {
    const creds = parseCloudinaryUrl(
      'cloudinary://k:s@demo?upload_prefix=http://127.0.0.1:9&secure=false&cname=127.0.0.1:9',
    );
    expect(creds).toEqual({
      cloudName: 'demo',
      apiKey: 'k',
      apiSecret: 's',
      apiOrigin: 'http://127.0.0.1:9',
      deliveryOrigin: 'http://127.0.0.1:9',
    });
    expect(parseCloudinaryUrl('cloudinary://k:s@demo').deliveryOrigin).toBe('https://res.cloudinary.com');
  });

  it('explains what to set when CLOUDINARY_URL is missing or malformed, without echoing it', () => {
    expect(() => parseCloudinaryUrl(undefined)).toThrow(ConfigError);
    expect(() => parseCloudinaryUrl('https://k:s@demo')).toThrow(/cloudinary:\/\//u);
    expect(() => parseCloudinaryUrl('cloudinary://onlykey@demo')).toThrow(/API secret/u);
    const thrown = (() => {
      try {
        parseCloudinaryUrl('cloudinary://key:topsecret@');
        return undefined;
      } catch (error) {
        return String(error);
      }
    })();
    expect(thrown).toMatch(/CLOUDINARY_URL/u);
    expect(thrown).not.toContain('topsecret');
  });

  it('rejects bad settings by name and keeps defaults otherwise', () => {
    expect(settingsFromEnv({}).deliveryTypes).toEqual(['upload', 'private', 'authenticated']);
    expect(() => settingsFromEnv({ RESOURCE_TYPES: 'image,audio' })).toThrow(/RESOURCE_TYPES has "audio"/u);
    expect(() => settingsFromEnv({ PART_SIZE_MB: '2' })).toThrow(/PART_SIZE_MB/u);
    expect(() => settingsFromEnv({ LISTING_API: 'graphql' })).toThrow(/LISTING_API/u);
    expect(settingsFromEnv({ PART_SIZE_MB: '16' }).partSize).toBe(16 * 1024 * 1024);
  });
});

describe('streaming verification', () => {
  const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
  const data = Buffer.alloc(100_000, 7);

  it('passes matching bytes through and reports their MD5', async () => {
    const verify = new VerifyingStream({ bytes: data.length, md5: md5(data) });
    const chunks: Buffer[] = [];
    await pipeline(Readable.from([data.subarray(0, 10), data.subarray(10)]), verify, async (source) => {
      for await (const c of source) chunks.push(c as Buffer);
    });
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
    expect(verify.md5).toBe(md5(data));
  });

  it('fails the stream on a short body, an overlong body or a wrong checksum', async () => {
    const drain = async (input: Buffer, expected: { bytes?: number; md5?: string }) =>
      pipeline(Readable.from([input]), new VerifyingStream(expected), async (s) => {
        for await (const _ of s) void _;
      });
    await expect(drain(data.subarray(1), { bytes: data.length })).rejects.toThrow(/received 99999 bytes/u);
    await expect(drain(data, { bytes: data.length - 1 })).rejects.toThrow(IntegrityError);
    await expect(drain(data, { md5: '0'.repeat(32) })).rejects.toThrow(/does not match/u);
  });
});

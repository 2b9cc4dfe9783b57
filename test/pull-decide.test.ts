import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { foldPath } from '../shared/local/safePath.js';
import {
  BandwidthLimit,
  decide,
  decodeListedKey,
  parseByteRate,
  Placer,
  plainMd5Etag,
  restoreStateOf,
  type ListedObject,
  type PulledRecord,
} from '../shared/pull/index.js';

const listed: ListedObject = {
  key: 'assets/image/upload/a.jpg',
  size: 100,
  etag: '"abc"',
  storageClass: 'STANDARD',
};
const record: PulledRecord = {
  key: listed.key,
  localPath: listed.key,
  size: 100,
  etag: '"abc"',
  md5: 'f'.repeat(32),
  md5Source: 'metadata',
  localSize: 100,
  localMtimeMs: 1_600_000_000_000,
  pulledAt: '2024-01-01T00:00:00.000Z',
};
const local = { size: 100, mtimeMs: 1_600_000_000_000 };

describe('deciding what a pull does with a listed object', () => {
  it('skips an object whose ETag, size and local file match the index', () => {
    expect(decide(listed, record, local)).toBe('skip');
    expect(decide(listed, record, local, { verify: true })).toBe('verify');
  });

  it('downloads what is missing, changed in the bucket, or changed on disk to another size', () => {
    expect(decide(listed, undefined, undefined)).toBe('download');
    expect(decide({ ...listed, etag: '"new"', size: 120 }, record, local)).toBe('download');
    expect(decide(listed, record, undefined)).toBe('download');
    expect(decide(listed, record, { size: 99, mtimeMs: local.mtimeMs })).toBe('download');
  });

  it('hashes a file of the right size that the index does not vouch for', () => {
    expect(decide(listed, undefined, local)).toBe('adopt');
    expect(decide(listed, record, { size: 100, mtimeMs: 1 })).toBe('adopt');
    expect(decide({ ...listed, etag: '"new"' }, record, local)).toBe('adopt');
  });

  it('treats GLACIER and DEEP_ARCHIVE as archived, GLACIER_IR as readable', () => {
    expect(decide({ ...listed, storageClass: 'GLACIER' }, undefined, undefined)).toBe('archived');
    expect(decide({ ...listed, storageClass: 'DEEP_ARCHIVE' }, undefined, undefined)).toBe('archived');
    expect(decide({ ...listed, storageClass: 'GLACIER_IR' }, undefined, undefined)).toBe('download');
    expect(decide({ ...listed, storageClass: 'GLACIER' }, record, local)).toBe('skip');
  });

  it('ignores zero-byte folder placeholders', () => {
    expect(decide({ ...listed, key: 'assets/', size: 0 }, undefined, undefined)).toBe('folder-marker');
  });
});

describe('placing a whole listing', () => {
  it('never gives two keys the same file, or a file where another needs a folder, on any disk (property)', () => {
    const segment = fc.constantFrom('a', 'A', 'b', 'é', 'e\u0301', 'x.jpg', 'X.JPG');
    const key = fc.array(segment, { minLength: 1, maxLength: 4 }).map((parts) => parts.join('/'));
    fc.assert(
      fc.property(fc.uniqueArray(key, { maxLength: 30 }), (keys) => {
        const placer = new Placer();
        const paths = [...keys].sort().map((k) => foldPath(placer.place(k).relative));
        const files = new Set(paths);
        expect(files.size).toBe(paths.length);
        for (const p of paths) {
          const segments = p.split('/');
          for (let i = 1; i < segments.length; i++)
            expect(files.has(segments.slice(0, i).join('/'))).toBe(false);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('says which key a collision was with', () => {
    const placer = new Placer();

    placer.place('assets/Logo.png');
    const second = placer.place('assets/logo.png');

    expect(second.relative.startsWith('_unsafe/')).toBe(true);
    expect(second.unsafeReason).toBe('its path collides with assets/Logo.png');
  });
});

describe('reading S3 answers', () => {
  it('decodes URL-encoded listing keys, spaces as + included', () => {
    expect(decodeListedKey('a%20b%2Bc+d')).toBe('a b+c d');
    expect(decodeListedKey('a%00b%5C')).toBe('a\u0000b\\');
  });

  it('reads the x-amz-restore header', () => {
    expect(restoreStateOf(undefined)).toBe('none');
    expect(restoreStateOf('ongoing-request="true"')).toBe('ongoing');
    expect(restoreStateOf('ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"')).toBe(
      'done',
    );
  });

  it('uses an ETag as an MD5 only when it is a plain single-part one', () => {
    expect(plainMd5Etag('"0123456789ABCDEF0123456789abcdef"')).toBe('0123456789abcdef0123456789abcdef');
    expect(plainMd5Etag('"0123456789abcdef0123456789abcdef-3"')).toBeUndefined();
    expect(plainMd5Etag(undefined)).toBeUndefined();
  });
});

describe('bandwidth limit', () => {
  it('parses rates people type', () => {
    expect(parseByteRate('500k')).toBe(512_000);
    expect(parseByteRate('2M')).toBe(2 * 1024 * 1024);
    expect(parseByteRate('1.5MiB/s')).toBe(1.5 * 1024 * 1024);
    expect(parseByteRate('1048576')).toBe(1_048_576);
    expect(parseByteRate('fast')).toBeUndefined();
    expect(parseByteRate('0')).toBeUndefined();
  });

  it('holds transfers to the limit', async () => {
    const limit = new BandwidthLimit(1024 * 1024);
    const started = performance.now();

    for (let i = 0; i < 20; i++) await limit.take(16 * 1024);

    // 320 KiB at 1 MiB/s, less the initial burst of a tenth of a second.
    expect(performance.now() - started).toBeGreaterThan(180);
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_KEY_BYTES } from '../shared/constants.js';
import { decodeObjectKey, decodePublicIdPath, encodePublicIdPath, objectKeyFor } from '../shared/keys.js';

const awkwardChars = fc.constantFrom(
  '/',
  '.',
  '..',
  '%',
  '%20',
  ' ',
  '?',
  '#',
  '+',
  '\\',
  ':',
  'é',
  'e\u0301',
  '日本',
  '\u0000',
  '*',
);
const publicIds = fc.oneof(
  fc.string({ minLength: 1, maxLength: 40 }),
  fc
    .array(fc.oneof(awkwardChars, fc.string({ maxLength: 5 })), { minLength: 1, maxLength: 12 })
    .map((parts) => parts.join('')),
);

describe('object keys for public ids', () => {
  it('decode back to the exact public id, whatever characters it holds', () => {
    fc.assert(
      fc.property(publicIds, (id) => {
        expect(decodePublicIdPath(encodePublicIdPath(id))).toBe(id);
      }),
      { numRuns: 2000 },
    );
  });

  it('never produce empty, "." or ".." path segments or characters file systems reject', () => {
    fc.assert(
      fc.property(publicIds, (id) => {
        const key = objectKeyFor({
          resourceType: 'image',
          deliveryType: 'upload',
          publicId: id,
          format: 'jpg',
        });
        for (const segment of key.split('/')) {
          expect(['', '.', '..']).not.toContain(segment);
          // eslint-disable-next-line no-control-regex
          expect(segment).not.toMatch(/[\u0000-\u001f\\:*?"<>|]/u);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('give two different assets two different keys', () => {
    fc.assert(
      fc.property(publicIds, publicIds, (a, b) => {
        fc.pre(a !== b);
        const ka = objectKeyFor({ resourceType: 'raw', deliveryType: 'upload', publicId: a });
        const kb = objectKeyFor({ resourceType: 'raw', deliveryType: 'upload', publicId: b });
        expect(ka).not.toBe(kb);
      }),
      { numRuns: 2000 },
    );
  });

  it('lay out assets by resource type and delivery type, adding the format except for raw files', () => {
    expect(
      objectKeyFor({
        resourceType: 'image',
        deliveryType: 'private',
        publicId: 'trips/2019/cat',
        format: 'jpg',
      }),
    ).toBe('assets/image/private/trips/2019/cat.jpg');
    expect(
      objectKeyFor({ resourceType: 'raw', deliveryType: 'upload', publicId: 'docs/a.pdf', format: 'pdf' }),
    ).toBe('assets/raw/upload/docs/a.pdf');
    expect(decodeObjectKey('assets/video/upload/clips/a%25b.mp4')).toEqual({
      resourceType: 'video',
      deliveryType: 'upload',
      publicIdWithExtension: 'clips/a%b.mp4',
      hashed: false,
    });
  });

  it('fall back to a hashed key within S3 limits for overlong ids, distinct per id', () => {
    const long = 'ü'.repeat(600);
    const key = objectKeyFor({
      resourceType: 'image',
      deliveryType: 'upload',
      publicId: long,
      format: 'png',
    });
    const other = objectKeyFor({
      resourceType: 'image',
      deliveryType: 'upload',
      publicId: `${long}x`,
      format: 'png',
    });

    expect(Buffer.byteLength(key)).toBeLessThanOrEqual(MAX_KEY_BYTES);
    expect(key).toMatch(/^assets\/image\/upload\/#hashed\/[0-9a-f]{64}\.png$/u);
    expect(other).not.toBe(key);
    expect(decodeObjectKey(key)?.hashed).toBe(true);
  });
});

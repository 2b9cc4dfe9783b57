import { mkdtempSync } from 'node:fs';
import { mkdir, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { LOCAL_CONTROL_DIR } from '../shared/constants.js';
import { objectKeyFor } from '../shared/keys.js';
import {
  foldPath,
  MAX_SEGMENT_BYTES,
  openNoFollow,
  placeKey,
  prepareParentDirs,
  resolveInside,
  UNSAFE_DIR,
  unsafeKeyReason,
} from '../shared/local/safePath.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

function freshFolder(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'safepath-'));
  dirs.push(dir);
  return dir;
}

const hostileSegment = fc.oneof(
  fc.constantFrom(
    '..',
    '.',
    '',
    ' ',
    '...',
    'a',
    'CON',
    'com1.txt',
    '\\',
    '..\\..',
    'C:',
    '\u0000',
    '\u202e',
  ),
  fc.constantFrom(LOCAL_CONTROL_DIR, UNSAFE_DIR, LOCAL_CONTROL_DIR.toUpperCase()),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.integer({ min: 250, max: 400 }).map((n) => 'é'.repeat(n / 2)),
);
const anyKey = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.array(hostileSegment, { minLength: 1, maxLength: 8 }).map((parts) => parts.join('/')),
  fc.array(hostileSegment, { minLength: 1, maxLength: 4 }).map((parts) => `/${parts.join('/')}`),
);

describe('safe placement of keys inside a destination', () => {
  it('never resolves a key outside the destination, with POSIX or Windows path rules (property)', () => {
    const root = '/dest/root';
    const winRoot = 'D:\\dest\\root';
    fc.assert(
      fc.property(anyKey, (key) => {
        const { relative } = placeKey(key);
        const posix = path.posix.relative(root, path.posix.join(root, relative));
        const win = path.win32.relative(winRoot, path.win32.join(winRoot, ...relative.split('/')));

        expect(posix.startsWith('..')).toBe(false);
        expect(path.posix.isAbsolute(posix)).toBe(false);
        expect(posix).not.toBe('');
        expect(win.startsWith('..')).toBe(false);
        expect(path.win32.isAbsolute(win)).toBe(false);
        expect(foldPath(relative).split('/')[0]).not.toBe(LOCAL_CONTROL_DIR.toLowerCase());
        expect(() => resolveInside(root, relative)).not.toThrow();
      }),
      { numRuns: 5000 },
    );
  });

  it('gives every segment a length any file system accepts (property)', () => {
    fc.assert(
      fc.property(anyKey, (key) => {
        for (const segment of placeKey(key).relative.split('/')) {
          expect(Buffer.byteLength(segment, 'utf8')).toBeLessThanOrEqual(MAX_SEGMENT_BYTES);
          expect(segment).not.toMatch(/^\.{1,2}$/u);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('maps different unsafe keys to different files (property)', () => {
    fc.assert(
      fc.property(anyKey, anyKey, (a, b) => {
        fc.pre(a !== b);
        expect(placeKey(a).relative).not.toBe(placeKey(b).relative);
      }),
      { numRuns: 2000 },
    );
  });

  it('keeps ordinary asset keys as they are', () => {
    const keys = [
      objectKeyFor({
        resourceType: 'image',
        deliveryType: 'upload',
        publicId: 'Photos/Été 2024/plage',
        format: 'jpg',
      }),
      objectKeyFor({
        resourceType: 'video',
        deliveryType: 'private',
        publicId: 'a b+c & d (1)',
        format: 'mp4',
      }),
      objectKeyFor({ resourceType: 'raw', deliveryType: 'upload', publicId: '../../etc/passwd' }),
      objectKeyFor({
        resourceType: 'image',
        deliveryType: 'upload',
        publicId: 'x?y#z*"<>|:\\',
        format: 'png',
      }),
      'manifests/2024-05-01T00-00-00-000Z-abcdef/image-upload-0.jsonl.gz',
    ];

    for (const key of keys) expect(placeKey(key)).toEqual({ relative: key });
  });

  it('says why a key was moved under _unsafe/', () => {
    expect(placeKey('../x').unsafeReason).toBe("'..' path segment");
    expect(placeKey('/abs').unsafeReason).toBe('absolute path');
    expect(placeKey('a\\b').unsafeReason).toBe("contains '\\'");
    expect(placeKey('a\u0000b').unsafeReason).toBe('contains control character U+0000');
    expect(placeKey(`s/${'y'.repeat(300)}`).unsafeReason).toBe('a segment longer than 255 bytes');
    expect(placeKey(`${LOCAL_CONTROL_DIR}/pull.sqlite`).unsafeReason).toContain('reserved folder');
    expect(placeKey('assets/raw/upload/aux').unsafeReason).toContain('reserved device name');
    expect(placeKey('assets/raw/upload/name.').unsafeReason).toContain('dot or space');
    expect(unsafeKeyReason('assets/image/upload/fine.jpg')).toBeUndefined();
  });

  it('keeps a plain extension on hashed names so the file still opens', () => {
    expect(placeKey('../holiday.JPG').relative).toMatch(/^_unsafe\/[0-9a-f]{64}\.jpg$/u);
    expect(placeKey('../weird.ext\u0000').relative).toMatch(/^_unsafe\/[0-9a-f]{64}$/u);
  });

  it('creates parent folders but refuses a parent that is a symlink or a file', async () => {
    const root = freshFolder();
    const outside = freshFolder();
    await symlink(outside, path.join(root, 'linked'));
    await writeFile(path.join(root, 'file'), 'x');

    await prepareParentDirs(root, 'a/b/c.txt');
    await expect(prepareParentDirs(root, 'linked/sub/c.txt')).rejects.toThrow('symbolic link');
    await expect(prepareParentDirs(root, 'file/sub/c.txt')).rejects.toThrow('is a file');

    expect(await readdir(path.join(root, 'a'))).toEqual(['b']);
    expect(await readdir(outside)).toEqual([]);
  });

  it('does not open a symlink as if it were the file', async () => {
    const root = freshFolder();
    await mkdir(path.join(root, 'd'));
    await writeFile(path.join(root, 'target'), 'secret');
    await symlink(path.join(root, 'target'), path.join(root, 'd', 'link'));

    await expect(openNoFollow(path.join(root, 'd', 'link'))).rejects.toMatchObject({ code: 'ELOOP' });
  });
});

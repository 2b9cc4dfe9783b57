import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { META } from '../../shared/constants.js';
import { dispositionOf } from '../../shared/errors.js';
import { objectKeyFor } from '../../shared/keys.js';
import type { ObjectStore, StoredObject } from '../../shared/types.js';
import {
  AWKWARD_PUBLIC_IDS,
  bodyOf,
  bytesOf,
  endlessBody,
  failingBody,
  md5Of,
  readAll,
  sleep,
} from './support.js';

export interface ObjectStoreHarness {
  store: ObjectStore;
  cleanup?: () => Promise<void>;
}

async function listAll(store: ObjectStore, prefix: string): Promise<StoredObject[]> {
  const found: StoredObject[] = [];
  for await (const object of store.list(prefix)) found.push(object);
  return found;
}

/**
 * What every ObjectStore must do (rclone's fstests idea): each test gets a fresh, empty store
 * from `make` and gives it back through `cleanup`.
 */
export function objectStoreContract(name: string, make: () => Promise<ObjectStoreHarness>): void {
  describe(`ObjectStore contract: ${name}`, () => {
    let harness: ObjectStoreHarness;
    let store: ObjectStore;
    beforeEach(async () => {
      harness = await make();
      store = harness.store;
    });
    afterEach(async () => {
      await harness.cleanup?.();
    });

    it('stores bytes and reads them back identically, reporting their size and MD5', async () => {
      const data = bytesOf(300_000);

      const put = await store.put('assets/image/upload/photo.jpg', bodyOf(data), { metadata: {} });
      const back = await readAll(await store.get('assets/image/upload/photo.jpg'));

      expect(put).toMatchObject({
        key: 'assets/image/upload/photo.jpg',
        bytes: data.length,
        md5: md5Of(data),
      });
      expect(back.equals(data)).toBe(true);
    });

    it('head describes a stored object: size, MD5 and the metadata it was given', async () => {
      const data = bytesOf(10_000, 2);
      const metadata = { [META.md5]: md5Of(data), [META.version]: '1700000000', [META.bytes]: '10000' };

      const put = await store.put('assets/image/upload/a.png', bodyOf(data), {
        metadata,
        contentType: 'image/png',
      });
      const head = await store.head('assets/image/upload/a.png');

      expect(head).toMatchObject({
        key: 'assets/image/upload/a.png',
        bytes: 10_000,
        md5: md5Of(data),
        metadata,
      });
      expect(head?.versionId).toBe(put.versionId);
    });

    it('head knows the MD5 even when the caller did not put it in the metadata', async () => {
      const data = bytesOf(5_000, 3);

      await store.put('assets/raw/upload/notes.txt', bodyOf(data), { metadata: { [META.version]: '1' } });
      const head = await store.head('assets/raw/upload/notes.txt');

      expect(head?.md5).toBe(md5Of(data));
      expect(head?.metadata[META.version]).toBe('1');
    });

    it('head of a key that was never written is undefined', async () => {
      await store.put('assets/image/upload/exists.jpg', bodyOf(bytesOf(10)), { metadata: {} });

      await expect(store.head('assets/image/upload/missing.jpg')).resolves.toBeUndefined();
    });

    it('writing a key again replaces what readers get', async () => {
      const first = await store.put('assets/image/upload/again.jpg', bodyOf(bytesOf(1000, 4)), {
        metadata: {},
      });
      const newer = bytesOf(2000, 5);

      const second = await store.put('assets/image/upload/again.jpg', bodyOf(newer), { metadata: {} });
      const head = await store.head('assets/image/upload/again.jpg');
      const back = await readAll(await store.get('assets/image/upload/again.jpg'));

      expect(head).toMatchObject({ bytes: 2000, md5: md5Of(newer) });
      expect(back.equals(newer)).toBe(true);
      // Stores that keep versions give every write its own.
      expect(second.versionId === undefined || second.versionId !== first.versionId).toBe(true);
    });

    it('list returns every object under a prefix, with its size, and nothing outside it', async () => {
      const keys = {
        'assets/image/upload/a.jpg': 11,
        'assets/image/upload/ab.jpg': 12,
        'assets/image/upload/deep/er/c.jpg': 13,
        'assets/image/private/d.jpg': 14,
        'assets/video/upload/e.mp4': 15,
        'manifests/run-1.jsonl.gz': 16,
      };
      for (const [key, size] of Object.entries(keys)) {
        await store.put(key, bodyOf(bytesOf(size)), { metadata: {} });
      }

      const upload = await listAll(store, 'assets/image/upload/');
      const startingWithA = await listAll(store, 'assets/image/upload/a');
      const everything = await listAll(store, '');

      expect(Object.fromEntries(upload.map((o) => [o.key, o.bytes]))).toEqual({
        'assets/image/upload/a.jpg': 11,
        'assets/image/upload/ab.jpg': 12,
        'assets/image/upload/deep/er/c.jpg': 13,
      });
      expect(startingWithA.map((o) => o.key).sort()).toEqual([
        'assets/image/upload/a.jpg',
        'assets/image/upload/ab.jpg',
      ]);
      expect(everything.map((o) => o.key).sort()).toEqual(Object.keys(keys).sort());
      expect(upload.every((o) => o.etag !== undefined && o.lastModified instanceof Date)).toBe(true);
    });

    it('a ranged read returns exactly the requested bytes, the end included', async () => {
      const data = bytesOf(100_000, 6);
      await store.put('assets/video/upload/clip.mp4', bodyOf(data), { metadata: {} });

      const middle = await readAll(
        await store.get('assets/video/upload/clip.mp4', { start: 1000, end: 1999 }),
      );
      const tail = await readAll(await store.get('assets/video/upload/clip.mp4', { start: 99_000 }));
      const oneByte = await readAll(await store.get('assets/video/upload/clip.mp4', { start: 0, end: 0 }));

      expect(middle.equals(data.subarray(1000, 2000))).toBe(true);
      expect(tail.equals(data.subarray(99_000))).toBe(true);
      expect(oneByte.equals(data.subarray(0, 1))).toBe(true);
    });

    it('a put whose body fails midway leaves no object behind', async () => {
      const put = store.put('assets/image/upload/broken.jpg', failingBody(300_000), { metadata: {} });

      await expect(put).rejects.toThrow();
      await expect(store.head('assets/image/upload/broken.jpg')).resolves.toBeUndefined();
      expect(await listAll(store, 'assets/')).toEqual([]);
    });

    it('a put aborted through its signal leaves no object behind', async () => {
      const abort = new AbortController();
      const put = store.put('assets/video/upload/cancelled.mp4', endlessBody(), {
        metadata: {},
        signal: abort.signal,
      });
      await sleep(50);
      abort.abort(new Error('the worker is out of time'));

      await expect(put).rejects.toThrow();
      await expect(store.head('assets/video/upload/cancelled.mp4')).resolves.toBeUndefined();
      expect(await listAll(store, 'assets/')).toEqual([]);
    });

    it('a failed put leaves the previous copy of the key readable', async () => {
      const data = bytesOf(4000, 8);
      await store.put('assets/image/upload/kept.jpg', bodyOf(data), { metadata: {} });

      await expect(
        store.put('assets/image/upload/kept.jpg', failingBody(100_000), { metadata: {} }),
      ).rejects.toThrow();
      const back = await readAll(await store.get('assets/image/upload/kept.jpg'));

      expect(back.equals(data)).toBe(true);
      await expect(store.head('assets/image/upload/kept.jpg')).resolves.toMatchObject({ md5: md5Of(data) });
    });

    it('awkward public ids make keys that store, list and read back exactly', async () => {
      const keys = AWKWARD_PUBLIC_IDS.map((publicId) =>
        objectKeyFor({ resourceType: 'image', deliveryType: 'upload', publicId, format: 'jpg' }),
      );
      expect(new Set(keys).size).toBe(keys.length);

      for (const [i, key] of keys.entries()) {
        await store.put(key, bodyOf(Buffer.from(`content of ${AWKWARD_PUBLIC_IDS[i]}`)), { metadata: {} });
      }
      const listed = await listAll(store, 'assets/image/upload/');

      const readBack: Record<string, string> = {};
      const heads: Record<string, unknown> = {};
      for (const key of keys) {
        readBack[key] = (await readAll(await store.get(key))).toString('utf8');
        const head = await store.head(key);
        heads[key] = { key: head?.key, bytes: head?.bytes, md5: head?.md5 };
      }

      expect(listed.map((o) => o.key).sort()).toEqual([...keys].sort());
      expect(readBack).toEqual(
        Object.fromEntries(keys.map((key, i) => [key, `content of ${AWKWARD_PUBLIC_IDS[i]}`])),
      );
      expect(heads).toEqual(
        Object.fromEntries(
          keys.map((key, i) => {
            const content = Buffer.from(`content of ${AWKWARD_PUBLIC_IDS[i]}`);
            return [key, { key, bytes: content.length, md5: md5Of(content) }];
          }),
        ),
      );
    });

    it('metadata values round-trip exactly', async () => {
      const metadata = {
        [META.publicId]: encodeURIComponent('folder/café ☕/ünïcode'),
        [META.assetId]: '0123456789abcdef0123456789abcdef',
        [META.createdAt]: '2024-01-02T03:04:05Z',
        [META.resourceType]: 'image',
        [META.deliveryType]: 'authenticated',
        note: 'a=b; c, "quoted" & <tag> ~!@#$%^*()[]{}|',
        empty: '',
      };

      await store.put('assets/image/authenticated/meta.jpg', bodyOf(bytesOf(100)), { metadata });
      const head = await store.head('assets/image/authenticated/meta.jpg');

      expect(head?.metadata).toMatchObject(metadata);
    });

    it('an empty object can be stored and read', async () => {
      const put = await store.put('assets/raw/upload/empty.txt', bodyOf(Buffer.alloc(0)), { metadata: {} });
      const back = await readAll(await store.get('assets/raw/upload/empty.txt'));

      expect(put).toMatchObject({ bytes: 0, md5: md5Of('') });
      expect(back.length).toBe(0);
      await expect(store.head('assets/raw/upload/empty.txt')).resolves.toMatchObject({ bytes: 0 });
    });

    it('reading a missing object fails as gone', async () => {
      const error: unknown = await store.get('assets/image/upload/nothing.jpg').then(
        () => undefined,
        (e: unknown) => e,
      );

      expect(error).toBeInstanceOf(Error);
      expect(dispositionOf(error)).toBe('gone');
    });
  });
}

import { describe, expect, it } from 'vitest';
import { AWKWARD_PUBLIC_IDS, DEFAULT_SIZES, generateLibrary, Library } from './double/index.js';
import { md5Hex, readAll } from './double/testing.js';

const GIB = 1024 ** 3;

describe('the library', () => {
  it('generates the asked counts per resource type and delivery type', () => {
    const library = generateLibrary({
      counts: { image: { upload: 30, private: 4 }, video: { authenticated: 3 }, raw: { upload: 5 } },
    });

    const tally = new Map<string, number>();
    for (const asset of library.all()) {
      const key = `${asset.resource_type}/${asset.type}`;
      tally.set(key, (tally.get(key) ?? 0) + 1);
    }

    expect(Object.fromEntries(tally)).toEqual({
      'image/upload': 30,
      'image/private': 4,
      'video/authenticated': 3,
      'raw/upload': 5,
    });
  });

  it('draws realistic sizes by default and honours overrides', () => {
    const realistic = generateLibrary({
      seed: 2,
      counts: { image: { upload: 200 }, video: { upload: 50 }, raw: { upload: 100 } },
    });
    const tiny = generateLibrary({ seed: 2, counts: { image: { upload: 50 } }, sizes: { image: [10, 20] } });

    for (const asset of realistic.all()) {
      const [min, max] = DEFAULT_SIZES[asset.resource_type];
      expect(asset.bytes).toBeGreaterThanOrEqual(min);
      expect(asset.bytes).toBeLessThanOrEqual(max);
    }
    expect(
      Math.max(
        ...realistic
          .all()
          .filter((a) => a.resource_type === 'video')
          .map((a) => a.bytes),
      ),
    ).toBeGreaterThan(500_000_000);
    expect(tiny.all().every((asset) => asset.bytes >= 10 && asset.bytes <= 20)).toBe(true);
    expect(realistic.all().find((a) => a.resource_type === 'raw')?.format).toBeUndefined();
  });

  it('is deterministic for a seed and different across seeds', async () => {
    const spec = { counts: { image: { upload: 20 } }, sizes: { image: [100, 10_000] as const } };
    const one = generateLibrary({ ...spec, seed: 'a' });
    const again = generateLibrary({ ...spec, seed: 'a' });
    const other = generateLibrary({ ...spec, seed: 'b' });
    const [first] = one.all();
    const [firstAgain] = again.all();
    if (first === undefined || firstAgain === undefined) throw new Error('empty');

    expect(again.all()).toEqual(one.all());
    expect(await readAll(again.contentStream(firstAgain))).toEqual(await readAll(one.contentStream(first)));
    expect(other.all().map((a) => a.asset_id)).not.toEqual(one.all().map((a) => a.asset_id));
  });

  it('adds every awkward public id, each a distinct asset', () => {
    const library = generateLibrary({ counts: {}, awkwardIds: true, sizes: { image: [1, 10] } });
    const ids = library.all().map((asset) => asset.public_id);
    const nfc = 'awkward/café crème'.normalize('NFC');
    const nfd = 'awkward/café crème'.normalize('NFD');

    expect(ids.sort()).toEqual([...AWKWARD_PUBLIC_IDS].sort());
    expect(nfc).not.toBe(nfd);
    expect(ids).toContain(nfc);
    expect(ids).toContain(nfd);
    expect(ids.some((id) => id.split('/').some((segment) => segment.length === 255))).toBe(true);
    expect(ids.some((id) => Buffer.byteLength(id) > 1000)).toBe(true);
    expect(ids.some((id) => id.split('/').length > 20)).toBe(true);
    for (const piece of ['%', '%20', '?', '#', '+', ' ', '/../', '/./', '//']) {
      expect(ids.some((id) => id.includes(piece))).toBe(true);
    }
    expect(ids.some((id) => id.startsWith('/'))).toBe(true);
    expect(ids.some((id) => id.endsWith('/'))).toBe(true);
  });

  it('repeats awkward ids with a suffix when asked for more than the list holds', () => {
    const library = generateLibrary({
      counts: {},
      awkwardIds: AWKWARD_PUBLIC_IDS.length + 3,
      sizes: { image: [1, 10] },
    });

    expect(library.size).toBe(AWKWARD_PUBLIC_IDS.length + 3);
    expect(library.all().filter((asset) => asset.public_id.endsWith(' ~1'))).toHaveLength(3);
  });

  it('streams the same bytes for a version, any range of them, and new bytes after an overwrite', async () => {
    const library = new Library(9);
    const asset = library.add({ publicId: 'x', resourceType: 'image', bytes: 300_001 });

    const whole = await readAll(library.contentStream(asset));
    const part = await readAll(library.contentStream(asset, 65_530, 140_000));
    const overwritten = library.overwrite('image', 'upload', 'x');
    const fresh = await readAll(library.contentStream(overwritten));

    expect(whole.length).toBe(300_001);
    expect(part.equals(whole.subarray(65_530, 140_001))).toBe(true);
    expect(fresh.length).toBe(300_001);
    expect(fresh.equals(whole)).toBe(false);
    expect(await library.md5Of(asset)).toBe(md5Hex(whole));
    expect(await library.md5Of(overwritten)).toBe(md5Hex(fresh));
  });

  it('computes each MD5 once and caches it', async () => {
    const library = new Library(3);
    const asset = library.add({ publicId: 'big', resourceType: 'video', bytes: 64 * 1024 * 1024 });

    const started = performance.now();
    const first = await library.md5Of(asset);
    const firstMs = performance.now() - started;
    const again = performance.now();
    const second = await library.md5Of(asset);
    const secondMs = performance.now() - again;

    expect(second).toBe(first);
    expect(first).toMatch(/^[0-9a-f]{32}$/);
    expect(secondMs).toBeLessThan(Math.max(1, firstMs / 10));
  });

  it('holds a 5 GiB video without storing it and serves any range of it', async () => {
    const heapBefore = process.memoryUsage().heapUsed;
    const library = generateLibrary({ counts: {}, large: [{ resourceType: 'video', bytes: 5 * GIB }] });
    const [video] = library.all();
    if (video === undefined) throw new Error('no video');

    const tail = await readAll(library.contentStream(video, 5 * GIB - 100, 5 * GIB - 1));
    const again = await readAll(library.contentStream(video, 5 * GIB - 100));

    expect(video).toMatchObject({ public_id: 'large/video_0', bytes: 5 * GIB, format: 'mp4' });
    expect(tail.length).toBe(100);
    expect(again.equals(tail)).toBe(true);
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(64 * 1024 * 1024);
  });

  it('indexes 100,000 assets quickly', () => {
    const started = performance.now();
    const library = generateLibrary({ counts: { image: { upload: 90_000 }, raw: { upload: 10_000 } } });
    const index = library.ordered({ resourceType: 'image', type: 'upload' }, [['created_at', 'desc']]);

    expect(library.size).toBe(100_000);
    expect(index.assets).toHaveLength(90_000);
    expect(performance.now() - started).toBeLessThan(15_000);
  });

  it('gives overwrites a strictly greater version even when the clock stands still', () => {
    const library = new Library();
    const frozen = new Date('2025-08-08T16:00:00Z');
    library.useClock(() => frozen);
    const first = library.add({ publicId: 'p', resourceType: 'image', bytes: 1 });

    const second = library.overwrite('image', 'upload', 'p');
    const third = library.overwrite('image', 'upload', 'p', 5);

    expect(second.version).toBe(first.version + 1);
    expect(third.version).toBe(first.version + 2);
    expect(third).toMatchObject({ asset_id: first.asset_id, created_at: first.created_at, bytes: 5 });
    expect(third.versions.map((v) => v.version)).toEqual([first.version, second.version, third.version]);
  });

  it('deletes, renames and re-adds with a new asset id', () => {
    const library = new Library();
    const first = library.add({ publicId: 'p', resourceType: 'raw', bytes: 1 });

    const renamed = library.rename('raw', 'upload', 'p', 'q');
    library.delete('raw', 'upload', 'q');
    const readded = library.add({ publicId: 'p', resourceType: 'raw', bytes: 1 });

    expect(renamed).toMatchObject({ asset_id: first.asset_id, version: first.version, public_id: 'q' });
    expect(library.get('raw', 'upload', 'q')).toBeUndefined();
    expect(readded.asset_id).not.toBe(first.asset_id);
    expect(() => library.add({ publicId: 'p', resourceType: 'raw', bytes: 1 })).toThrow(/already exists/);
  });

  it('lists all assets sorted by resource type, type and public id', () => {
    const library = new Library();
    library.add({ publicId: 'b', resourceType: 'video', bytes: 1 });
    library.add({ publicId: 'z', resourceType: 'image', type: 'private', bytes: 1 });
    library.add({ publicId: 'a', resourceType: 'image', bytes: 1 });
    library.add({ publicId: 'c', resourceType: 'raw', bytes: 1 });

    expect(library.all().map((a) => `${a.resource_type}/${a.type}/${a.public_id}`)).toEqual([
      'image/private/z',
      'image/upload/a',
      'raw/upload/c',
      'video/upload/b',
    ]);
  });
});

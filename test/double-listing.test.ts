import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AWKWARD_PUBLIC_IDS, generateLibrary, loadSdkFor, startCloudinaryDouble } from './double/index.js';
import type { CloudinaryDouble, CloudinarySdk, DoubleAsset } from './double/index.js';
import { fetchBytes, md5Hex, rejectionOf } from './double/testing.js';

const NOW = new Date('2025-08-08T16:30:00Z');

interface ListItem {
  asset_id: string;
  public_id: string;
  type: string;
  version: number;
  bytes: number;
  created_at: string;
  secure_url: string;
  [field: string]: unknown;
}

interface ListPage {
  resources: ListItem[];
  next_cursor?: string;
}

describe('Admin API listing and details through the SDK', () => {
  let double: CloudinaryDouble;
  let cloudinary: CloudinarySdk;

  const list = (options: Record<string, unknown>): Promise<ListPage> =>
    cloudinary.api.resources(options) as Promise<ListPage>;

  async function walk(
    options: Record<string, unknown>,
    between?: (page: number) => void,
  ): Promise<ListItem[]> {
    const seen: ListItem[] = [];
    let cursor: string | undefined;
    for (let page = 0; page === 0 || cursor !== undefined; page += 1) {
      if (page > 0) between?.(page);
      const answer = await list({ ...options, ...(cursor && { next_cursor: cursor }) });
      seen.push(...answer.resources);
      cursor = answer.next_cursor;
    }
    return seen;
  }

  const idsOf = (assets: Array<{ public_id: string }>): string[] => assets.map((asset) => asset.public_id);
  const libraryIds = (filter: (asset: DoubleAsset) => boolean): string[] =>
    idsOf(double.library.all().filter(filter)).sort();

  beforeAll(async () => {
    const library = generateLibrary({
      seed: 'listing',
      counts: { image: { upload: 40, private: 6 }, video: { upload: 4 }, raw: { upload: 5 } },
      sizes: { image: [100, 5_000], video: [100, 5_000], raw: [100, 5_000] },
      awkwardIds: true,
    });
    library.add({
      publicId: 'tagged/one',
      resourceType: 'image',
      bytes: 321,
      createdAt: new Date('2025-08-01T00:00:00Z'),
      tags: ['a', 'b'],
      context: { alt: 'Alt text' },
      metadata: { rating: 4 },
    });
    double = await startCloudinaryDouble({ library, now: () => NOW, rateLimitPerHour: 100_000 });
    cloudinary = await loadSdkFor(double);
  });

  afterAll(async () => {
    await double.close();
  });

  it('returns 10 items by default, newest first, with the documented fields and no etag', async () => {
    const page = await list({ type: 'upload' });

    expect(page.resources).toHaveLength(10);
    expect(page.next_cursor).toEqual(expect.any(String));
    const created = page.resources.map((item) => Date.parse(item.created_at));
    expect(created).toEqual([...created].sort((a, b) => b - a));
    expect(Object.keys(page.resources[0] ?? {}).sort()).toEqual(
      [
        'asset_id',
        'asset_folder',
        'bytes',
        'created_at',
        'display_name',
        'format',
        'height',
        'public_id',
        'resource_type',
        'secure_url',
        'type',
        'url',
        'version',
        'width',
      ].sort(),
    );
    expect(page.resources[0]?.asset_id).toMatch(/^[0-9a-f]{32}$/);
    expect(page.resources.some((item) => 'etag' in item || 'tags' in item)).toBe(false);
  });

  it('refuses max_results above 500 with a 400', async () => {
    const error = await rejectionOf(list({ max_results: 501 }));

    expect(error).toMatchObject({
      error: { http_code: 400, message: expect.stringContaining('max_results') },
    });
  });

  it('walks every asset of one type exactly once with next_cursor', async () => {
    const seen = await walk({ type: 'upload', max_results: 7 });

    expect(idsOf(seen)).toHaveLength(new Set(idsOf(seen)).size);
    expect(idsOf(seen).sort()).toEqual(libraryIds((a) => a.resource_type === 'image' && a.type === 'upload'));
  });

  it('lists every delivery type when the type segment is left out', async () => {
    const seen = await walk({ resource_type: 'image', max_results: 500 });

    expect(new Set(seen.map((item) => item.type))).toEqual(new Set(['upload', 'private']));
    expect(seen).toHaveLength(double.library.all().filter((a) => a.resource_type === 'image').length);
  });

  it('keeps paging correct while assets are added and deleted between pages', async () => {
    const library = double.library;
    const before = libraryIds((a) => a.resource_type === 'video');
    const firstPage = await list({ resource_type: 'video', type: 'upload', max_results: 2 });
    const [seenFirst] = firstPage.resources;
    const oldest = [...firstPage.resources].pop();
    if (seenFirst === undefined || oldest === undefined) throw new Error('fixture too small');
    const unseen = library
      .all()
      .filter((a) => a.resource_type === 'video' && !idsOf(firstPage.resources).includes(a.public_id));
    const [deletedUnseen] = unseen;
    if (deletedUnseen === undefined) throw new Error('fixture too small');

    // Between pages: delete a seen and an unseen asset, add one older and one newer than the cursor.
    library.delete('video', 'upload', seenFirst.public_id);
    library.delete('video', 'upload', deletedUnseen.public_id);
    library.add({
      publicId: 'late/older',
      resourceType: 'video',
      bytes: 10,
      createdAt: new Date('2000-01-01T00:00:00Z'),
    });
    library.add({
      publicId: 'late/newer',
      resourceType: 'video',
      bytes: 10,
      createdAt: new Date('2099-01-01T00:00:00Z'),
    });
    const rest = await walk({
      resource_type: 'video',
      type: 'upload',
      max_results: 2,
      next_cursor: firstPage.next_cursor,
    });

    const all = [...idsOf(firstPage.resources), ...idsOf(rest)];
    expect(all).toHaveLength(new Set(all).size);
    expect(all.sort()).toEqual(
      [...before.filter((id) => id !== deletedUnseen.public_id), 'late/older'].sort(),
    );
  });

  it('sorts by public_id under a prefix', async () => {
    const seen = await walk({ type: 'upload', prefix: 'photos/2024', max_results: 3 });

    expect(idsOf(seen)).toEqual(
      libraryIds(
        (a) => a.resource_type === 'image' && a.type === 'upload' && a.public_id.startsWith('photos/2024'),
      ),
    );
    expect(idsOf(seen)).toEqual([...idsOf(seen)].sort());
    expect(seen.length).toBeGreaterThan(3);
  });

  it('lists what was created since start_at, in the asked direction', async () => {
    const startAt = new Date('2025-01-01T00:00:00Z');
    const expected = libraryIds(
      (a) =>
        a.resource_type === 'image' && a.type === 'upload' && Date.parse(a.created_at) >= startAt.getTime(),
    );

    const ascending = await walk({ type: 'upload', start_at: startAt, direction: 'asc', max_results: 4 });
    const descending = await walk({ type: 'upload', start_at: startAt.toISOString(), max_results: 4 });

    expect(idsOf(ascending).sort()).toEqual(expected);
    expect(idsOf(descending).sort()).toEqual(expected);
    const times = ascending.map((item) => Date.parse(item.created_at));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(expected.length).toBeGreaterThan(0);
  });

  it('adds tags, context and metadata only when asked', async () => {
    const plain = await list({ prefix: 'tagged/' });
    const rich = await list({ prefix: 'tagged/', tags: true, context: true, metadata: true });

    expect(plain.resources[0]).not.toHaveProperty('tags');
    expect(plain.resources[0]).not.toHaveProperty('context');
    expect(rich.resources[0]).toMatchObject({
      tags: ['a', 'b'],
      context: { custom: { alt: 'Alt text' } },
      metadata: { rating: 4 },
    });
  });

  it('trims items to the asked fields', async () => {
    const page = await list({ type: 'upload', fields: 'public_id,bytes', max_results: 3 });

    for (const item of page.resources) {
      expect(Object.keys(item).sort()).toEqual(['asset_id', 'bytes', 'public_id', 'resource_type', 'type']);
    }
  });

  it('points secure_url at the double, versioned, serving the listed bytes', async () => {
    const [item] = (await list({ type: 'upload', prefix: 'photos/', max_results: 1 })).resources;
    if (item === undefined) throw new Error('nothing listed');

    const { response, body } = await fetchBytes(item.secure_url);

    expect(item.secure_url.startsWith(`${double.origin}/double-cloud/image/upload/v${item.version}/`)).toBe(
      true,
    );
    expect(response.status).toBe(200);
    expect(body.length).toBe(item.bytes);
  });

  it('gives details with the etag (MD5 of the delivered bytes), versions and last_updated', async () => {
    const library = double.library;
    const original = library.add({ publicId: 'details/overwritten', resourceType: 'image', bytes: 4_000 });
    const current = library.overwrite('image', 'upload', original.public_id, 5_000);

    const details = (await cloudinary.api.resource(current.public_id, { versions: true })) as Record<
      string,
      unknown
    >;
    const { body } = await fetchBytes(String(details.secure_url));

    expect(details).toMatchObject({
      public_id: 'details/overwritten',
      asset_id: original.asset_id,
      version: current.version,
      bytes: 5_000,
      etag: md5Hex(body),
      last_updated: { updated_at: current.uploaded_at },
    });
    expect(current.version).toBeGreaterThan(original.version);
    expect(details.versions).toEqual([
      expect.objectContaining({ version: String(current.version), size: 5_000 }),
      expect.objectContaining({ version: String(original.version), size: 4_000 }),
    ]);
    expect(await cloudinary.api.resource(current.public_id)).not.toHaveProperty('versions');
  });

  it('decodes the public id the SDK sends as one percent-encoded segment, for every awkward id', async () => {
    const found: string[] = [];
    for (const id of AWKWARD_PUBLIC_IDS) {
      const details = (await cloudinary.api.resource(id)) as { public_id: string };
      found.push(details.public_id);
    }

    expect(found).toEqual([...AWKWARD_PUBLIC_IDS]);
    expect(double.requestLog.some((entry) => entry.path.includes('awkward%2F'))).toBe(true);
  });

  it('answers 404 for an unknown public id', async () => {
    const error = await rejectionOf(cloudinary.api.resource('no/such/asset'));

    expect(error).toMatchObject({
      error: { http_code: 404, message: expect.stringContaining('no/such/asset') },
    });
  });

  it('keeps the version on tag edits and shows them in last_updated', async () => {
    const asset = double.library.add({ publicId: 'details/retagged', resourceType: 'image', bytes: 10 });
    double.library.update('image', 'upload', asset.public_id, { tags: ['fresh'] });

    const details = (await cloudinary.api.resource(asset.public_id)) as Record<string, unknown>;

    expect(details).toMatchObject({
      version: asset.version,
      tags: ['fresh'],
      last_updated: { tags_updated_at: expect.any(String) },
    });
  });

  it('moves a renamed asset to its new id with the same asset_id', async () => {
    const asset = double.library.add({ publicId: 'details/before-rename', resourceType: 'raw', bytes: 10 });
    double.library.rename('raw', 'upload', asset.public_id, 'details/after-rename');

    const moved = (await cloudinary.api.resource('details/after-rename', { resource_type: 'raw' })) as {
      asset_id: string;
    };
    const gone = await rejectionOf(
      cloudinary.api.resource('details/before-rename', { resource_type: 'raw' }),
    );

    expect(moved.asset_id).toBe(asset.asset_id);
    expect(gone).toMatchObject({ error: { http_code: 404 } });
  });

  it('finds an asset by asset_id', async () => {
    const asset = double.library.all()[0];
    if (asset === undefined) throw new Error('empty library');

    // The SDK has the call; its typings lack it.
    const api = cloudinary.api as unknown as {
      resource_by_asset_id(id: string): Promise<{ public_id: string }>;
    };
    const details = await api.resource_by_asset_id(asset.asset_id);

    expect(details.public_id).toBe(asset.public_id);
  });
});

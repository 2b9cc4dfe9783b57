import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Library, loadSdkFor, startCloudinaryDouble } from './double/index.js';
import type { CloudinaryDouble, CloudinarySdk } from './double/index.js';
import { fetchBytes, md5Hex, rejectionOf } from './double/testing.js';

const NOW = new Date('2025-08-08T16:30:00Z');
const HOUR = 3_600_000;
const ago = (ms: number): Date => new Date(NOW.getTime() - ms);

interface SearchItem {
  public_id: string;
  etag?: string;
  secure_url: string;
  [field: string]: unknown;
}

interface SearchAnswer {
  total_count: number;
  time: number;
  resources: SearchItem[];
  next_cursor?: string;
}

describe('Search API through the SDK', () => {
  let double: CloudinaryDouble;
  let cloudinary: CloudinarySdk;

  const search = (
    expression: string,
    options: { sort?: [string, 'asc' | 'desc']; max?: number; cursor?: string; withField?: string[] } = {},
  ): Promise<SearchAnswer> => {
    let query = cloudinary.search.expression(expression).sort_by(...(options.sort ?? ['public_id', 'asc']));
    if (options.max !== undefined) query = query.max_results(options.max);
    if (options.cursor !== undefined) query = query.next_cursor(options.cursor);
    for (const field of options.withField ?? []) query = query.with_field(field);
    return query.execute() as Promise<SearchAnswer>;
  };
  const ids = async (expression: string): Promise<string[]> =>
    (await search(expression, { max: 500 })).resources.map((item) => item.public_id);

  beforeAll(async () => {
    const library = new Library('search');
    const add = (
      publicId: string,
      createdAt: Date,
      extra: Partial<Parameters<Library['add']>[0]> = {},
    ): void => {
      library.add({ publicId, resourceType: 'image', bytes: 1_000, createdAt, ...extra });
    };
    add('shop/shoes/red', ago(2 * HOUR), {
      tags: ['sale'],
      context: { alt: 'Red shoe' },
      metadata: { sku: 'R1' },
    });
    add('shop/shoes/blue', ago(30 * HOUR));
    add('shop/hats/cap', ago(10 * 24 * HOUR));
    add('shop/hats/deep/beanie', ago(20 * 24 * HOUR));
    add('clips/intro', ago(25 * 24 * HOUR), { resourceType: 'video', format: 'mp4' });
    add('secret/plan', ago(5 * HOUR), { type: 'private' });
    add('docs/manual.pdf', ago(400 * 24 * HOUR), { resourceType: 'raw' });
    add('dynamic-asset', ago(1 * HOUR), { assetFolder: 'marketing/2025' });
    double = await startCloudinaryDouble({ library, now: () => NOW });
    cloudinary = await loadSdkFor(double);
  });

  afterAll(async () => {
    await double.close();
  });

  it('filters by resource_type and type', async () => {
    expect(await ids('resource_type:video')).toEqual(['clips/intro']);
    expect(await ids('type:private')).toEqual(['secret/plan']);
    expect(await ids('resource_type:raw')).toEqual(['docs/manual.pdf']);
  });

  it('filters by folder, exactly or with its subfolders, by public id and by asset_folder', async () => {
    expect(await ids('folder:"shop/shoes"')).toEqual(['shop/shoes/blue', 'shop/shoes/red']);
    expect(await ids('folder:shop/*')).toEqual([
      'shop/hats/cap',
      'shop/hats/deep/beanie',
      'shop/shoes/blue',
      'shop/shoes/red',
    ]);
    expect(await ids('folder:"marketing/2025"')).toEqual(['dynamic-asset']);
    expect(await ids('public_id:shop/hats/cap')).toEqual(['shop/hats/cap']);
    expect(await ids('public_id:shop/hats/*')).toEqual(['shop/hats/cap', 'shop/hats/deep/beanie']);
  });

  it('compares upload dates with relative values against the double clock', async () => {
    expect(await ids('uploaded_at>1d')).toEqual(['dynamic-asset', 'secret/plan', 'shop/shoes/red']);
    expect(await ids('uploaded_at>2h')).toEqual(['dynamic-asset']);
    expect(await ids('uploaded_at>=2h')).toEqual(['dynamic-asset', 'shop/shoes/red']);
    expect(await ids('uploaded_at>3w AND resource_type:image')).toEqual([
      'dynamic-asset',
      'secret/plan',
      'shop/hats/cap',
      'shop/hats/deep/beanie',
      'shop/shoes/blue',
      'shop/shoes/red',
    ]);
    expect(await ids('uploaded_at>1m AND uploaded_at<3w')).toEqual(['clips/intro']);
  });

  it('compares creation dates with absolute ISO values', async () => {
    expect(await ids('created_at<2025-01-01')).toEqual(['docs/manual.pdf']);
    expect(await ids('created_at<="2025-07-14T16:30:00Z"')).toEqual(['clips/intro', 'docs/manual.pdf']);
    expect(await ids('created_at=2025-08-08')).toEqual(['dynamic-asset', 'secret/plan', 'shop/shoes/red']);
    expect(await ids('created_at>=2025-08-08T14:30:00Z')).toEqual(['dynamic-asset', 'shop/shoes/red']);
  });

  it('combines terms with AND, OR and parentheses', async () => {
    expect(await ids('resource_type:video OR type:private')).toEqual(['clips/intro', 'secret/plan']);
    expect(await ids('resource_type:image AND (folder:"shop/shoes" OR type:private)')).toEqual([
      'secret/plan',
      'shop/shoes/blue',
      'shop/shoes/red',
    ]);
    expect(await ids('folder:shop/* AND NOT folder:shop/hats/*')).toEqual([
      'shop/shoes/blue',
      'shop/shoes/red',
    ]);
  });

  it('sorts as asked and pages with next_cursor, keeping total_count', async () => {
    const newestFirst = await search('resource_type:image', { sort: ['created_at', 'desc'], max: 500 });
    const walked: string[] = [];
    const totals: number[] = [];
    let cursor: string | undefined;
    do {
      const page = await search('resource_type:image', { max: 2, ...(cursor && { cursor }) });
      walked.push(...page.resources.map((item) => item.public_id));
      totals.push(page.total_count);
      cursor = page.next_cursor;
    } while (cursor !== undefined);

    const times = newestFirst.resources.map((item) => Date.parse(String(item.created_at)));
    expect(times).toEqual([...times].sort((a, b) => b - a));
    expect(walked).toEqual([...walked].sort());
    expect(walked).toHaveLength(6);
    expect(new Set(totals)).toEqual(new Set([6]));
  });

  it('refuses max_results above 500', async () => {
    const error = await rejectionOf(search('resource_type:image', { max: 501 }));

    expect(error).toMatchObject({ error: { http_code: 400 } });
  });

  it('returns the etag of the delivered bytes, upload dates, status and access mode', async () => {
    const answer = await search('public_id:shop/shoes/red');
    const [item] = answer.resources;
    if (item === undefined) throw new Error('not found');
    const { body } = await fetchBytes(item.secure_url);

    expect(answer).toMatchObject({ total_count: 1, time: expect.any(Number) });
    expect(item).toMatchObject({
      etag: md5Hex(body),
      bytes: 1_000,
      version: Math.floor(ago(2 * HOUR).getTime() / 1000),
      created_at: '2025-08-08T14:30:00Z',
      uploaded_at: '2025-08-08T14:30:00Z',
      status: 'active',
      access_mode: 'public',
    });
    expect(item).not.toHaveProperty('tags');
  });

  it('adds tags, context and metadata with with_field', async () => {
    const answer = await search('public_id:shop/shoes/red', { withField: ['tags', 'context', 'metadata'] });

    expect(answer.resources[0]).toMatchObject({
      tags: ['sale'],
      context: { alt: 'Red shoe' },
      metadata: { sku: 'R1' },
    });
  });

  it('accepts both the SDK percent-encoded path and a plain /resources/search', async () => {
    const plain = await fetch(`${double.origin}/v1_1/double-cloud/resources/search`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${double.apiKey}:${double.apiSecret}`).toString('base64')}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ expression: 'type:private' }),
    });
    await search('type:private');

    expect(plain.status).toBe(200);
    expect(((await plain.json()) as SearchAnswer).resources.map((item) => item.public_id)).toEqual([
      'secret/plan',
    ]);
    expect(double.requestLog.at(-1)?.path).toBe('/v1_1/double-cloud/resources%2Fsearch');
  });

  it('refuses, loudly, expressions it does not understand', async () => {
    const unknownField = await rejectionOf(search('colors:red'));
    const bareWord = await rejectionOf(search('shoes'));

    expect(unknownField).toMatchObject({
      error: { http_code: 400, message: expect.stringContaining('colors') },
    });
    expect(bareWord).toMatchObject({ error: { http_code: 400 } });
  });

  it('counts searches among the Admin API calls', async () => {
    const before = { ...double.counters };

    await search('type:upload');

    expect(double.counters.adminCalls).toBe(before.adminCalls + 1);
    expect(double.counters.searchCalls).toBe(before.searchCalls + 1);
  });

  describe('on accounts without Search Tier 2 or without Search (assumed shapes, see SearchMode)', () => {
    const withEverything = ['tags', 'context', 'metadata'];
    afterAll(() => double.setSearchMode('tier2'));

    it('Tier 1 refuses with_field metadata with a 400 naming the field and the tier, and answers without it', async () => {
      double.setSearchMode('tier1');

      const refused = await rejectionOf(search('public_id:shop/shoes/red', { withField: withEverything }));
      const answer = await search('public_id:shop/shoes/red', { withField: ['tags', 'context'] });

      expect(refused).toMatchObject({
        error: { http_code: 400, message: expect.stringMatching(/with_field metadata .*Tier 2/u) },
      });
      expect(answer.resources[0]).toMatchObject({ tags: ['sale'], context: { alt: 'Red shoe' } });
    });

    it('a silent Tier 1 answers with_field metadata without the metadata', async () => {
      double.setSearchMode('tier1-silent');

      const answer = await search('public_id:shop/shoes/red', { withField: withEverything });

      expect(answer.resources[0]).toMatchObject({ tags: ['sale'], context: { alt: 'Red shoe' } });
      expect(answer.resources[0]).not.toHaveProperty('metadata');
    });

    it('without Search every search is a 403 while the resources listing still answers, metered alike', async () => {
      double.setSearchMode('none');
      const before = double.counters.adminCalls;

      const refused = await rejectionOf(search('type:upload'));
      const listed = (await cloudinary.api.resources({
        ...double.sdkOptions,
        resource_type: 'image',
        type: 'upload',
        metadata: true,
      })) as { resources: Array<{ public_id: string; metadata?: unknown }> };

      expect(refused).toMatchObject({
        error: { http_code: 403, message: expect.stringContaining('Search API is not enabled') },
      });
      expect(listed.resources.find((r) => r.public_id === 'shop/shoes/red')?.metadata).toEqual({ sku: 'R1' });
      expect(double.counters.adminCalls).toBe(before + 2);
    });
  });
});

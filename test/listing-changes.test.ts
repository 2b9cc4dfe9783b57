import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloudinarySource } from '../shared/cloudinary/CloudinarySource.js';
import { DEFAULT_SETTINGS, listingsOf, parseCloudinaryUrl } from '../shared/config.js';
import { coverageFor, INCREMENTAL_OVERLAP_MS, settingsKeyOf } from '../shared/engine/coverage.js';
import { emptyCounters } from '../shared/engine/enumerate.js';
import type { RunRecord, SourcePage } from '../shared/types.js';
import { Library, startCloudinaryDouble, type CloudinaryDouble } from './double/index.js';

const DAY_MS = 86_400_000;
const NOW = new Date('2026-03-02T10:00:00Z');
const SINCE = new Date(NOW.getTime() - DAY_MS).toISOString();
const ago = (ms: number) => new Date(NOW.getTime() - ms);

describe('listing only what changed since a time, on the double', () => {
  let double: CloudinaryDouble;
  let now = NOW;

  beforeAll(async () => {
    const library = new Library('changes');
    library.useClock(() => now);
    const add = (publicId: string, createdAt: Date) =>
      library.add({ publicId, resourceType: 'image', bytes: 1_000, createdAt });
    add('old/untouched', ago(30 * DAY_MS));
    add('old/tagged', ago(30 * DAY_MS));
    add('old/renamed', ago(30 * DAY_MS));
    add('old/overwritten', ago(30 * DAY_MS));
    add('new/upload', ago(2 * 3_600_000));
    library.add({
      publicId: 'new/private',
      resourceType: 'image',
      type: 'private',
      bytes: 10,
      createdAt: ago(60_000),
    });
    now = ago(3_600_000);
    library.update('image', 'upload', 'old/tagged', { tags: ['edited'] });
    library.rename('image', 'upload', 'old/renamed', 'moved/renamed');
    library.overwrite('image', 'upload', 'old/overwritten');
    now = NOW;
    double = await startCloudinaryDouble({ library, now: () => now });
  });
  afterAll(async () => double?.close());

  const source = () =>
    new CloudinarySource({ credentials: parseCloudinaryUrl(double.cloudinaryUrl), now: () => now });
  const ids = (page: SourcePage | undefined) => page?.assets.map((a) => a.publicId).sort();

  it('finds uploads, overwrites, tag edits and renames in one Search call, and nothing older', async () => {
    double.counters.reset();

    const page = await source().listChanges(
      listingsOf({ resourceTypes: ['image'], deliveryTypes: ['upload'] }),
      SINCE,
      undefined,
    );

    expect(ids(page)).toEqual(['moved/renamed', 'new/upload', 'old/overwritten', 'old/tagged']);
    expect(double.counters.adminCalls).toBe(1);
    const renamed = page?.assets.find((a) => a.publicId === 'moved/renamed');
    const original = double.library.get('image', 'upload', 'moved/renamed');
    expect(renamed).toMatchObject({
      assetId: original?.asset_id,
      version: original?.version,
      etag: await double.library.md5Of(original!),
    });
    expect(double.library.get('image', 'upload', 'old/renamed')).toBeUndefined();
  });

  it('keeps to the configured listings (private only when asked for)', async () => {
    const listings = listingsOf({ resourceTypes: ['image'], deliveryTypes: ['upload', 'private'] });

    const page = await source().listChanges(listings, SINCE, undefined);

    expect(ids(page)).toContain('new/private');
  });

  it('uses the other reading of the change-time fields when Search refuses the first', async () => {
    // A 400 on the first search: as Search would answer a field it does not know.
    double.faults.add({ route: 'search', kind: 'status', status: 400, times: 1 });
    const expressions = () =>
      double.requestLog.filter((r) => r.kind === 'search').map((r) => r.params?.expression ?? '');
    const before = expressions().length;

    const page = await source().listChanges(
      listingsOf({ resourceTypes: ['image'], deliveryTypes: ['upload'] }),
      SINCE,
      undefined,
    );

    expect(ids(page)).toEqual(['moved/renamed', 'new/upload', 'old/overwritten', 'old/tagged']);
    const sent = expressions().slice(before);
    expect(sent).toHaveLength(2);
    expect(sent[0]).toContain('last_updated.tags_updated_at>=');
    expect(sent[1]).toMatch(/last_updated>="/u);
  });

  it('says it cannot list changes when the account has no Search, so the run lists everything', async () => {
    double.setSearchMode('none');
    try {
      const page = await source().listChanges(listingsOf(DEFAULT_SETTINGS), SINCE, undefined);
      expect(page).toBeUndefined();
    } finally {
      double.setSearchMode('tier2');
    }
  });

  it('does not find an upload Search has not indexed yet (eventual consistency)', async () => {
    const lagging = await startCloudinaryDouble({
      library: double.library,
      now: () => now,
      searchLagMs: 10_000,
    });
    try {
      now = NOW;
      double.library.add({
        publicId: 'new/just-now',
        resourceType: 'image',
        bytes: 5,
        createdAt: ago(2_000),
      });
      const lagSource = new CloudinarySource({
        credentials: parseCloudinaryUrl(lagging.cloudinaryUrl),
        now: () => now,
      });
      const listings = listingsOf({ resourceTypes: ['image'], deliveryTypes: ['upload'] });
      expect(ids(await lagSource.listChanges(listings, SINCE, undefined))).not.toContain('new/just-now');
      now = new Date(NOW.getTime() + 10_000);
      expect(ids(await lagSource.listChanges(listings, SINCE, undefined))).toContain('new/just-now');
    } finally {
      now = NOW;
      await lagging.close();
    }
  });
});

describe('what a daily run lists', () => {
  const settings = { ...DEFAULT_SETTINGS, reconcileEveryDays: 7 };
  const source = { listChanges: async () => undefined };
  const completed = (overrides: Partial<RunRecord> = {}): RunRecord => {
    const startedAt = ago(DAY_MS).toISOString();
    return {
      runId: 'r1',
      phase: 'completed',
      listings: {},
      counters: emptyCounters(),
      startedAt,
      updatedAt: startedAt,
      coverage: {
        kind: 'full',
        lastFullAt: ago(3 * DAY_MS).toISOString(),
        settingsKey: settingsKeyOf(settings),
      },
      ...overrides,
    };
  };
  const decide = (previous: RunRecord | undefined, over: Partial<Parameters<typeof coverageFor>[0]> = {}) =>
    coverageFor({
      previous,
      settings,
      source,
      now: NOW,
      startedAt: NOW.toISOString(),
      redrive: false,
      ...over,
    });

  it('lists the changes since the last successful run started, an hour of overlap included', () => {
    const previous = completed();

    expect(decide(previous)).toEqual({
      kind: 'changes',
      since: new Date(Date.parse(previous.startedAt) - INCREMENTAL_OVERLAP_MS).toISOString(),
      lastFullAt: previous.coverage?.lastFullAt,
      settingsKey: settingsKeyOf(settings),
    });
  });

  it('lists everything on the first run, after a failed run, and after the listing settings changed', () => {
    expect(decide(undefined)).toMatchObject({
      kind: 'full',
      reason: 'first run',
      lastFullAt: NOW.toISOString(),
    });
    expect(decide(completed({ phase: 'failed' }))).toMatchObject({
      kind: 'full',
      reason: 'the last run failed',
    });
    expect(decide(completed(), { settings: { ...settings, deliveryTypes: ['upload'] } })).toMatchObject({
      kind: 'full',
      reason: 'the listing settings changed',
    });
    expect(decide(completed({ coverage: undefined }))).toMatchObject({ kind: 'full' });
  });

  it('lists everything when the reconciliation is due, on a redrive, or without Search', () => {
    const stale = completed({
      coverage: {
        kind: 'changes',
        lastFullAt: ago(7 * DAY_MS).toISOString(),
        settingsKey: settingsKeyOf(settings),
      },
    });
    expect(decide(stale)).toMatchObject({
      kind: 'full',
      reason: expect.stringMatching(/reconciliation is due/u),
    });
    expect(decide(completed(), { redrive: true })).toMatchObject({ kind: 'full' });
    expect(decide(completed(), { source: {} })).toMatchObject({ kind: 'full' });
    expect(
      decide(
        completed({
          listingCapabilities: {
            api: 'resources',
            searchUnavailable: true,
            refusedFields: [],
            learnedAt: NOW.toISOString(),
          },
        }),
      ),
    ).toMatchObject({ kind: 'full' });
    expect(decide(completed(), { settings: { ...settings, reconcileEveryDays: 0 } })).toMatchObject({
      kind: 'full',
    });
  });
});

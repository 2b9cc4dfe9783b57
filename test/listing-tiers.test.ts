import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { runBackup } from '../shared/backup/runBackup.js';
import { backupMain } from '../shared/cli/backup.js';
import { readManifest, type ManifestEntry } from '../shared/engine/manifest.js';
import { assetIdOf } from '../shared/keys.js';
import { LocalObjectStore } from '../shared/local/LocalObjectStore.js';
import { SqliteStateStore } from '../shared/local/SqliteStateStore.js';
import type { AssetState } from '../shared/types.js';
import {
  generateLibrary,
  startCloudinaryDouble,
  type CloudinaryDouble,
  type DoubleAsset,
  type SearchMode,
} from './double/index.js';
import {
  backupEnv,
  backupOptions,
  captureStreams,
  differencesFromLibrary,
  freshFolder,
  removeFolders,
  servedBytes,
  TINY_SIZES,
} from './support/backupBed.js';

const doubles: CloudinaryDouble[] = [];
const DAY = 24 * 3_600_000;

/** The awkward sample library: every kind of asset, awkward ids, tags, context and metadata. */
async function startDouble(search: SearchMode): Promise<CloudinaryDouble> {
  const library = generateLibrary({
    seed: 'tiers',
    counts: {
      image: { upload: 30, private: 4, authenticated: 3 },
      video: { upload: 3 },
      raw: { upload: 5, private: 1 },
    },
    sizes: TINY_SIZES,
    awkwardIds: true,
  });
  // Every field the manifest keeps, on assets the listing must not lose them for.
  library.add({
    publicId: 'described/everything',
    resourceType: 'image',
    format: 'jpg',
    bytes: 4_000,
    tags: ['kept', 'tagged'],
    context: { alt: 'an alt text', caption: 'a caption' },
    metadata: { rating: 5, license: 'cc-by' },
  });
  const double = await startCloudinaryDouble({
    library,
    search,
    now: () => new Date('2026-03-02T10:05:00Z'),
  });
  doubles.push(double);
  return double;
}

afterEach(async () => {
  for (const double of doubles.splice(0)) await double.close();
});
afterAll(removeFolders);

function idOf(asset: DoubleAsset): string {
  return assetIdOf({
    resourceType: asset.resource_type,
    deliveryType: asset.type,
    publicId: asset.public_id,
  });
}

async function manifestOf(dest: string, key: string): Promise<Map<string, ManifestEntry>> {
  const store = new LocalObjectStore(dest);
  try {
    const entries = new Map<string, ManifestEntry>();
    for await (const entry of readManifest(store, key)) entries.set(entry.id, entry);
    return entries;
  } finally {
    store.close();
  }
}

async function statesOf(dest: string): Promise<AssetState[]> {
  const state = new SqliteStateStore(dest);
  try {
    const all: AssetState[] = [];
    for await (const asset of state.listAssets()) all.push(asset);
    return all;
  } finally {
    state.close();
  }
}

/** Searches that asked for `with_field: metadata`, and searches at all. */
function searches(double: CloudinaryDouble, from = 0): { all: number; withMetadata: number } {
  const entries = double.requestLog.slice(from).filter((entry) => entry.kind === 'search');
  return {
    all: entries.length,
    withMetadata: entries.filter((entry) => entry.params?.with_field?.includes('metadata')).length,
  };
}

/** Runs `npm run backup` twice into one folder; returns what a user and a test would look at. */
async function backUpTwice(double: CloudinaryDouble) {
  const dest = freshFolder('tiers');
  const first = captureStreams();
  const json = captureStreams();
  const firstCode = await backupMain(['--dest', dest], first.streams, backupEnv(double));
  const requestsBefore = double.requestLog.length;
  const servedBefore = servedBytes(double);
  const secondCode = await backupMain(['--dest', dest, '--json'], json.streams, backupEnv(double));
  const summary = JSON.parse(json.out().trim().split('\n').at(-1) ?? '{}') as {
    manifest: string;
    unavailable: string[];
  };
  return {
    dest,
    firstCode,
    secondCode,
    output: first.out(),
    summary,
    secondRunSearches: searches(double, requestsBefore),
    secondRunServed: servedBytes(double) - servedBefore,
    manifest: await manifestOf(dest, summary.manifest),
    states: await statesOf(dest),
  };
}

describe('npm run backup on every Cloudinary plan', { timeout: 120_000 }, () => {
  it('with Search Tier 2 copies everything with tags, context and metadata, verified by MD5, and reports nothing unavailable', async () => {
    const double = await startDouble('tier2');
    const described = double.library.get('image', 'upload', 'described/everything') as DoubleAsset;

    const run = await backUpTwice(double);

    expect(run.firstCode).toBe(0);
    expect(await differencesFromLibrary(run.dest, double.library)).toEqual([]);
    expect(run.output).not.toContain('Unavailable');
    expect(run.manifest.size).toBe(double.library.size);
    expect(run.manifest.get(idOf(described))).toMatchObject({
      tags: ['kept', 'tagged'],
      context: { alt: 'an alt text', caption: 'a caption' },
      metadata: { rating: 5, license: 'cc-by' },
    });
    expect(run.manifest.get(idOf(described))?.unavailable).toBeUndefined();
    expect(run.states.every((s) => s.verifiedBy === 'md5')).toBe(true);
    expect(run.secondCode).toBe(0);
    expect(run.secondRunServed).toBe(0);
  });

  it('with Search Tier 1 (metadata refused) copies everything with tags and context, says once that metadata was unavailable, and never asks for it again', async () => {
    const double = await startDouble('tier1');
    const described = double.library.get('image', 'upload', 'described/everything') as DoubleAsset;

    const run = await backUpTwice(double);

    expect(run.firstCode).toBe(0);
    expect(await differencesFromLibrary(run.dest, double.library)).toEqual([]);
    const lines = run.output.split('\n').filter((line) => line.startsWith('Unavailable: '));
    expect(lines).toEqual([
      expect.stringMatching(
        /Search refused with_field metadata \(HTTP 400: .*Tier 2.*\): metadata is not in the manifest/u,
      ),
    ]);
    expect(run.manifest.size).toBe(double.library.size);
    const entry = run.manifest.get(idOf(described));
    expect(entry).toMatchObject({
      tags: ['kept', 'tagged'],
      context: { alt: 'an alt text', caption: 'a caption' },
      unavailable: ['metadata'],
    });
    expect(entry?.metadata).toBeUndefined();
    // Search still gives the etag: every copy is checked against Cloudinary's MD5.
    expect(run.states.every((s) => s.verifiedBy === 'md5')).toBe(true);
    expect(searches(double).withMetadata, 'refused field asked for once, in the first call').toBe(1);
    expect(run.secondRunSearches.withMetadata, 'the next run remembers the tier').toBe(0);
    expect(run.summary.unavailable).toHaveLength(1);
    expect(run.secondCode).toBe(0);
    expect(run.secondRunServed).toBe(0);
  });

  it('with a Tier 1 that silently leaves metadata out copies everything with tags and context', async () => {
    const double = await startDouble('tier1-silent');
    const described = double.library.get('image', 'upload', 'described/everything') as DoubleAsset;

    const run = await backUpTwice(double);

    expect(run.firstCode).toBe(0);
    expect(await differencesFromLibrary(run.dest, double.library)).toEqual([]);
    expect(run.manifest.get(idOf(described))).toMatchObject({
      tags: ['kept', 'tagged'],
      context: { alt: 'an alt text', caption: 'a caption' },
    });
    expect(run.states.every((s) => s.verifiedBy === 'md5')).toBe(true);
  });

  it('without Search falls back to the resources listing, copies everything with tags, context and metadata, and says copies are verified by size only', async () => {
    const double = await startDouble('none');
    const described = double.library.get('image', 'upload', 'described/everything') as DoubleAsset;

    const run = await backUpTwice(double);

    expect(run.firstCode).toBe(0);
    expect(await differencesFromLibrary(run.dest, double.library)).toEqual([]);
    const lines = run.output.split('\n').filter((line) => line.startsWith('Unavailable: '));
    expect(lines).toEqual([
      expect.stringMatching(
        /Search API is not available for this account \(HTTP 403: .*\): listing with the resources listing instead.*verified by size only/u,
      ),
    ]);
    expect(run.output).toContain(`${double.library.size} copies were verified by size only`);
    expect(run.manifest.size).toBe(double.library.size);
    expect(run.manifest.get(idOf(described))).toMatchObject({
      tags: ['kept', 'tagged'],
      context: { alt: 'an alt text', caption: 'a caption' },
      metadata: { rating: 5, license: 'cc-by' },
      unavailable: ['etag'],
    });
    expect(run.states.every((s) => s.verifiedBy === 'size')).toBe(true);
    expect(searches(double).all, 'Search tried once, then never again').toBe(1);
    expect(run.secondRunSearches.all).toBe(0);
    expect(run.secondCode).toBe(0);
    expect(run.secondRunServed).toBe(0);
  });

  it('a week later, once Search answers, copies verified by size only are checked against the etag: matches are confirmed without a download and a corrupt one is copied again', async () => {
    const double = await startDouble('none');
    const dest = freshFolder('upgrade');
    const victim = double.library.get('image', 'upload', 'described/everything') as DoubleAsset;
    double.faults.add({ route: ['delivery', 'download'], publicId: victim.public_id, kind: 'corrupt' });

    const sizeOnly = await runBackup(backupOptions(double, dest));
    const corruptBefore = await differencesFromLibrary(dest, double.library);
    double.faults.clear();
    double.setSearchMode('tier2');
    double.clock.set(new Date(double.clock.now().getTime() + 8 * DAY));
    const from = double.requestLog.length;
    const io = captureStreams();
    const code = await backupMain(['--dest', dest], io.streams, backupEnv(double));
    const downloaded = double.requestLog
      .slice(from)
      .filter((e) => (e.kind === 'delivery' || e.kind === 'download') && e.status === 200)
      .map((e) => e.publicId);

    expect(sizeOnly.failed).toEqual([]);
    expect(sizeOnly.verifiedBySize).toBe(double.library.size);
    expect(corruptBefore).toEqual([
      expect.stringMatching(/^wrong bytes in assets\/image\/upload\/described\/everything\.jpg/u),
    ]);
    expect(code).toBe(0);
    expect(downloaded).toEqual([victim.public_id]);
    expect(await differencesFromLibrary(dest, double.library)).toEqual([]);
    expect(io.out()).toContain(
      `${double.library.size - 1} earlier copies verified by size only now match Cloudinary's MD5.`,
    );
    expect(io.out()).not.toContain('Unavailable');
    const states = await statesOf(dest);
    expect(states.every((s) => s.verifiedBy === 'md5' && s.status === 'replicated')).toBe(true);
  });

  it('LISTING_API=resources says what it cannot check; switching back to Search confirms the copies without downloading them', async () => {
    const double = await startDouble('tier2');
    const dest = freshFolder('resources-by-choice');
    const chosen = captureStreams();
    const dryRun = captureStreams();
    const back = captureStreams();

    const chosenCode = await backupMain(
      ['--dest', dest],
      chosen.streams,
      backupEnv(double, { LISTING_API: 'resources' }),
    );
    const sizeOnly = await statesOf(dest);
    const searchesBefore = searches(double).all;
    await backupMain(['--dest', dest, '--dry-run'], dryRun.streams, backupEnv(double));
    const servedBefore = servedBytes(double);
    const backCode = await backupMain(['--dest', dest], back.streams, backupEnv(double));

    expect(chosenCode).toBe(0);
    expect(searchesBefore, 'the resources listing by choice never tries Search').toBe(0);
    expect(chosen.out()).toMatch(
      /^Unavailable: LISTING_API=resources: the resources listing gives no MD5 \(etag\), so copies are verified by size only; a corrupted download of the right size cannot be detected/mu,
    );
    expect(sizeOnly.every((s) => s.verifiedBy === 'size')).toBe(true);
    expect(dryRun.out()).toContain(`0 would be copied (0 B), ${double.library.size} unchanged`);
    expect(backCode).toBe(0);
    expect(servedBytes(double) - servedBefore).toBe(0);
    expect(back.out()).toContain(
      `${double.library.size} earlier copies verified by size only now match Cloudinary's MD5.`,
    );
    expect(back.out()).not.toContain('Unavailable');
    expect((await statesOf(dest)).every((s) => s.verifiedBy === 'md5')).toBe(true);
  });
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { buffer } from 'node:stream/consumers';
import { afterEach, describe, expect, it } from 'vitest';
import { finalizeListing } from '../shared/engine/finalize.js';
import { IdDigestSet } from '../shared/engine/IdDigestSet.js';
import { silentLog } from '../shared/engine/log.js';
import { manifestKey, manifestPartKey, readManifest, writeManifestPart } from '../shared/engine/manifest.js';
import { LocalObjectStore } from '../shared/local/LocalObjectStore.js';
import { SqliteStateStore } from '../shared/local/SqliteStateStore.js';
import { META } from '../shared/constants.js';
import { assetIdOf, objectKeyFor } from '../shared/keys.js';
import type { SourceAsset } from '../shared/types.js';

const RUN = '2026-03-01T10-15-00-000Z-abcdef';
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function asset(i: number): SourceAsset {
  return {
    resourceType: 'image',
    deliveryType: 'upload',
    publicId: `photos/${String(i).padStart(3, '0')}`,
    assetId: `a${i}`,
    version: 1,
    format: 'jpg',
    bytes: 10,
    createdAt: '2026-01-01T00:00:00Z',
  };
}

async function library(seen: number, known: number) {
  const dir = mkdtempSync(join(tmpdir(), 'finalize-'));
  dirs.push(dir);
  const store = new LocalObjectStore(dir);
  const state = new SqliteStateStore(dir);
  for (let i = 0; i < known; i++) {
    const a = asset(i);
    await state.recordReplicated({
      ...a,
      id: assetIdOf(a),
      objectKey: objectKeyFor(a),
      md5: '0'.repeat(32),
      status: 'replicated',
      attempts: 0,
    });
  }
  const listed = Array.from({ length: seen }, (_, i) => asset(i));
  for (let page = 0; page * 7 < seen; page++) {
    await writeManifestPart(
      store,
      manifestPartKey(RUN, 'image/upload', page),
      listed.slice(page * 7, page * 7 + 7),
    );
  }
  return { store, state };
}

describe('finalizing a complete listing', () => {
  it('stops at its deadline, and the next invocation continues the scan where it stopped', async () => {
    const { store, state } = await library(30, 50);
    const checkpoints: { after: string; deleted: number }[] = [];
    let after: string | undefined;
    const step = (stopAfterCheckpoints: number) => ({
      runId: RUN,
      listings: [{ resourceType: 'image' as const, deliveryType: 'upload' }],
      at: '2026-03-01T11:00:00.000Z',
      after,
      checkpointEvery: 8,
      mustStop: () => checkpoints.length >= stopAfterCheckpoints,
      checkpoint: async (last: string, deleted: number) => {
        checkpoints.push({ after: last, deleted });
        after = last;
      },
    });

    expect(await finalizeListing({ store, state, log: silentLog }, step(2))).toBe('stopped');
    expect(await store.head(manifestKey(RUN))).toBeUndefined();
    expect(await finalizeListing({ store, state, log: silentLog }, step(Infinity))).toBe('completed');

    const states = [];
    for await (const s of state.listAssets()) states.push(s);
    const deleted = states.filter((s) => s.status === 'deleted-at-source').map((s) => s.publicId);
    expect(deleted.sort()).toEqual(Array.from({ length: 20 }, (_, i) => asset(30 + i).publicId));
    expect(checkpoints.reduce((sum, c) => sum + c.deleted, 0)).toBe(20);
    const entries = [];
    for await (const entry of readManifest(store, manifestKey(RUN))) entries.push(entry.publicId);
    expect(entries).toEqual(Array.from({ length: 30 }, (_, i) => asset(i).publicId));
  });

  it('writes the joined manifest with the MD5 of its bytes as metadata', async () => {
    const { store, state } = await library(20, 20);
    const done = await finalizeListing(
      { store, state, log: silentLog },
      {
        runId: RUN,
        listings: [{ resourceType: 'image', deliveryType: 'upload' }],
        at: '2026-03-01T11:00:00.000Z',
        mustStop: () => false,
        checkpoint: async () => undefined,
      },
    );

    expect(done).toBe('completed');
    const head = await store.head(manifestKey(RUN));
    const bytes = await buffer(await store.get(manifestKey(RUN)));
    expect(head?.metadata[META.md5] ?? head?.md5).toBe(createHash('md5').update(bytes).digest('hex'));
  });
});

describe('the set of listed ids', () => {
  it('holds a million ids in 8 bytes each and finds every one of them, and none other', () => {
    const set = new IdDigestSet();
    for (let i = 0; i < 1_000_000; i++) set.add(`image/upload/photo-${i}`);
    expect(set.size).toBe(1_000_000);
    for (let i = 0; i < 1_000_000; i += 997) expect(set.has(`image/upload/photo-${i}`)).toBe(true);
    let strangers = 0;
    for (let i = 0; i < 10_000; i++) if (set.has(`image/upload/other-${i}`)) strangers++;
    expect(strangers).toBe(0);
  });
});

import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../shared/backup/runBackup.js';
import { restoreMain } from '../shared/cli/restore.js';
import { readManifest, type ManifestEntry } from '../shared/engine/manifest.js';
import { LocalObjectStore } from '../shared/local/LocalObjectStore.js';
import { finalManifests } from '../shared/restore/manifests.js';
import type { RestoreSummary } from '../shared/restore/types.js';
import { generateLibrary, startCloudinaryDouble, type CloudinaryDouble } from './double/index.js';
import {
  backupEnv,
  backupOptions,
  captureStreams,
  freshFolder,
  REPO,
  removeFolders,
  TINY_SIZES,
  waitUntil,
} from './support/backupBed.js';

/** What a backup knows of each asset: what a faithful restore must give back. */
interface Kept {
  bytes: number;
  md5: string | undefined;
  format: string | undefined;
  deliveryType: string;
  tags: string[];
  context: Record<string, unknown>;
  metadata: Record<string, unknown>;
}

async function latestManifest(dest: string): Promise<Map<string, Kept>> {
  const store = new LocalObjectStore(dest);
  try {
    const keys: string[] = [];
    for await (const object of store.list('manifests/')) keys.push(object.key);
    const latest = finalManifests(keys).at(-1);
    if (!latest) throw new Error(`no manifest in ${dest}`);
    const kept = new Map<string, Kept>();
    for await (const entry of readManifest(store, latest.key)) {
      const head = await store.head(entry.objectKey);
      kept.set(entry.id, keptOf(entry, head?.md5));
    }
    return kept;
  } finally {
    store.close();
  }
}

function keptOf(entry: ManifestEntry, md5: string | undefined): Kept {
  return {
    bytes: entry.bytes,
    md5,
    format: entry.format,
    deliveryType: entry.deliveryType,
    tags: entry.tags ?? [],
    context: entry.context ?? {},
    metadata: entry.metadata ?? {},
  };
}

function summaryOf(out: string): RestoreSummary {
  const last = out.trim().split('\n').at(-1) ?? '{}';
  return JSON.parse(last) as RestoreSummary;
}

function deleteAll(double: CloudinaryDouble): void {
  for (const asset of double.library.all())
    double.library.delete(asset.resource_type, asset.type, asset.public_id);
}

describe('npm run restore from a local backup folder', { timeout: 180_000 }, () => {
  let double: CloudinaryDouble;
  let dest: string;
  let journal: string;
  let before: Map<string, Kept>;

  beforeAll(async () => {
    double = await startCloudinaryDouble({
      library: generateLibrary({
        seed: 'restore',
        counts: {
          image: { upload: 30, private: 4, authenticated: 3 },
          video: { upload: 3 },
          raw: { upload: 6, private: 2 },
        },
        sizes: TINY_SIZES,
        awkwardIds: true,
      }),
    });
    dest = freshFolder('restore');
    journal = join(freshFolder('restore-journal'), 'journal.jsonl');
    const first = await runBackup(backupOptions(double, dest));
    if (first.failed.length > 0) throw new Error(`the first backup failed: ${JSON.stringify(first.failed)}`);
    before = await latestManifest(dest);
  });
  afterAll(async () => {
    await double?.close();
    await removeFolders();
  });

  it('puts back every asset of the awkward library after all were deleted: the next backup finds each unchanged', async () => {
    const count = double.library.size;
    deleteAll(double);
    const { streams, out, err } = captureStreams();

    const code = await restoreMain(
      ['--from', dest, '--journal', journal, '--json'],
      streams,
      backupEnv(double),
    );

    expect(code, err()).toBe(0);
    const summary = summaryOf(out());
    expect(summary.restored).toBe(count);
    expect(summary.failed).toEqual([]);
    expect(double.library.size).toBe(count);
    const again = freshFolder('restore-again');
    const second = await runBackup(backupOptions(double, again));
    expect(second.failed).toEqual([]);
    const after = await latestManifest(again);
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    for (const [id, kept] of before) expect(after.get(id), id).toEqual(kept);
  });

  it('restores nothing twice: a second restore finds every asset already restored and verified', async () => {
    const uploads = double.counters.uploadRequests;
    const { streams, out } = captureStreams();

    const code = await restoreMain(
      ['--from', dest, '--journal', journal, '--json'],
      streams,
      backupEnv(double),
    );

    expect(code).toBe(0);
    expect(summaryOf(out()).alreadyThere).toBe(before.size);
    expect(double.counters.uploadRequests).toBe(uploads);
  });

  it('--deleted-only after 10 deletions at Cloudinary restores exactly those 10', async () => {
    const gone = double.library
      .all()
      .filter((_, i) => i % 4 === 1)
      .slice(0, 10);
    for (const asset of gone) double.library.delete(asset.resource_type, asset.type, asset.public_id);
    // The next backup sees them gone: they leave its manifest.
    expect((await runBackup(backupOptions(double, dest))).failed).toEqual([]);
    const { streams, out, err } = captureStreams();

    const code = await restoreMain(
      ['--from', dest, '--deleted-only', '--journal', join(freshFolder('j'), 'j.jsonl'), '--json'],
      streams,
      backupEnv(double),
    );

    expect(code, err()).toBe(0);
    const restoredIds = out()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { event?: string; id?: string; outcome?: string })
      .filter((e) => e.event === 'asset' && e.outcome === 'restored')
      .map((e) => e.id)
      .sort();
    expect(restoredIds).toEqual(gone.map((a) => `${a.resource_type}/${a.type}/${a.public_id}`).sort());
    expect(summaryOf(out()).selected).toBe(10);
    for (const asset of gone)
      expect(double.library.get(asset.resource_type, asset.type, asset.public_id)).toBeDefined();
  });

  it('killed with kill -9 while uploading, a rerun leaves no duplicate and every asset verified', async () => {
    // The backup as it stands now: the last run saw 10 assets gone, so its manifest lists the rest.
    const wanted = await latestManifest(dest);
    deleteAll(double);
    const killJournal = join(freshFolder('kill'), 'journal.jsonl');
    // Slow answers (about 10 s for the whole restore), so the kill lands with uploads in flight.
    const slow = double.faults.add({ route: 'upload', kind: 'latency', ms: 400 });
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'shared/cli/restore.ts',
        '--from',
        dest,
        '--journal',
        killJournal,
        '--json',
        '--concurrency',
        '3',
      ],
      { cwd: REPO, env: backupEnv(double), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.once('exit', (_c, signal) => resolve(signal)),
    );
    await waitUntil(
      () => (stdout.match(/"outcome":"restored"/gu) ?? []).length >= 3,
      60_000,
      'three restored assets',
    );
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    double.faults.remove(slow);
    const restoredBeforeKill = double.library.size;
    expect(restoredBeforeKill).toBeLessThan(wanted.size);
    const { streams, out, err } = captureStreams();

    const code = await restoreMain(
      ['--from', dest, '--journal', killJournal, '--json'],
      streams,
      backupEnv(double),
    );

    expect(code, err()).toBe(0);
    const summary = summaryOf(out());
    expect(summary.failed).toEqual([]);
    expect(summary.skipped).toEqual([]);
    expect(summary.restored + summary.alreadyThere).toBe(summary.selected);
    expect(summary.alreadyThere).toBeGreaterThanOrEqual(3);
    // No duplicate: exactly the backed-up ids, each holding the backed-up bytes.
    const all = double.library.all();
    expect(all.map((a) => `${a.resource_type}/${a.type}/${a.public_id}`).sort()).toEqual(
      [...wanted.keys()].sort(),
    );
    for (const asset of all) {
      expect(await double.library.md5Of(asset)).toBe(
        wanted.get(`${asset.resource_type}/${asset.type}/${asset.public_id}`)?.md5,
      );
    }
    expect(readFileSync(killJournal, 'utf8').trim().split('\n').length).toBeGreaterThanOrEqual(
      summary.selected,
    );
  });

  it('says what to do for a missing folder, an empty folder and a wrong CLOUDINARY_URL, and never prints the secret', async () => {
    const empty = freshFolder('empty');
    mkdirSync(join(empty, 'nothing'));
    const missing = captureStreams();
    expect(await restoreMain(['--from', join(empty, 'nope')], missing.streams, backupEnv(double))).toBe(2);
    expect(missing.err()).toMatch(/no such folder/u);
    const blank = captureStreams();
    expect(await restoreMain(['--from', empty], blank.streams, backupEnv(double))).toBe(2);
    expect(blank.err()).toMatch(/holds no backup.*npm run backup or npm run pull/u);
    const none = captureStreams();
    expect(await restoreMain([], none.streams, backupEnv(double))).toBe(2);
    expect(none.err()).toMatch(/--from DIR, --bucket NAME or --stack NAME/u);
    const asOf = captureStreams();
    expect(
      await restoreMain(['--from', dest, '--as-of', '2026-01-01'], asOf.streams, backupEnv(double)),
    ).toBe(2);
    expect(asOf.err()).toMatch(/--as-of reads the bucket's version history.*--bucket or --stack/u);
    const badDate = captureStreams();
    expect(
      await restoreMain(['--bucket', 'b', '--as-of', 'yesterday'], badDate.streams, backupEnv(double)),
    ).toBe(2);
    expect(badDate.err()).toMatch(/--as-of needs a date such as 2026-03-01/u);

    const wrongSecret = double.cloudinaryUrl.replace(encodeURIComponent(double.apiSecret), 'not-the-secret');
    const wrong = captureStreams();
    const code = await restoreMain(['--from', dest, '--journal', join(empty, 'j.jsonl')], wrong.streams, {
      ...backupEnv(double),
      CLOUDINARY_URL: wrongSecret,
    });
    expect(code).toBe(1);
    expect(wrong.err()).toMatch(/rejected the credentials.*CLOUDINARY_URL/u);
    expect(wrong.err() + wrong.out()).not.toContain('not-the-secret');
  });
});

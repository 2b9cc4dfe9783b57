import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCycle } from '../functions/cycle.js';
import { runBackup, type BackupSummary } from '../shared/backup/runBackup.js';
import { parseCloudinaryUrl, settingsFromEnv } from '../shared/config.js';
import { manifestKey, type ManifestEntry } from '../shared/engine/manifest.js';
import { UNSAFE_INDEX } from '../shared/local/unsafeIndex.js';
import { runPull, type PullSummary } from '../shared/pull/index.js';
import { generateLibrary } from './double/index.js';
import {
  differencesFromLibrary,
  freshFolder,
  removeFolders,
  TINY_SIZES,
  treeOf,
  type TreeFile,
} from './support/backupBed.js';
import { createPipelineBed, type PipelineBed } from './support/pipelineBed.js';

/** The ids a gzipped JSON Lines manifest lists, sorted. */
async function manifestIds(root: string, key: string): Promise<string[]> {
  const text = gunzipSync(await readFile(join(root, ...key.split('/')))).toString('utf8');
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => (JSON.parse(line) as ManifestEntry).id)
    .sort();
}

describe('a local backup and a pull of the replicated bucket', { timeout: 120_000 }, () => {
  let bed: PipelineBed;
  let backupDir: string;
  let pullDir: string;
  let backup: BackupSummary;
  let pulled: PullSummary;
  let cycleRunId: string;

  beforeAll(async () => {
    bed = await createPipelineBed({
      library: generateLibrary({
        seed: 'parity',
        counts: {
          image: { upload: 30, private: 6, authenticated: 4 },
          video: { upload: 3, private: 2 },
          raw: { upload: 8, private: 2, authenticated: 1 },
        },
        sizes: TINY_SIZES,
        awkwardIds: true,
      }),
    });
    backupDir = freshFolder('parity-backup');
    pullDir = freshFolder('parity-pull');

    backup = await runBackup({
      dest: backupDir,
      credentials: parseCloudinaryUrl(bed.double.cloudinaryUrl),
      settings: settingsFromEnv(process.env),
    });
    // One drain loop: moto_locked.py holds its lock through each 1 s ReceiveMessage long poll.
    const cycle = await runCycle({ workers: 1 });
    cycleRunId = cycle.runId;
    pulled = await runPull(
      { dest: pullDir, bucket: bed.aws.bucket },
      { s3: bed.aws.clients.s3, out: { write: () => true }, mode: 'quiet' },
    );
  }, 120_000);
  afterAll(async () => {
    await bed?.close();
    await removeFolders();
  });

  it('hold the same files at the same paths with the same bytes and times, awkward and private ids included', async () => {
    const assets = bed.double.library.all();
    const fromBackup = await treeOf(backupDir);
    const fromPull = await treeOf(pullDir);
    // The `_unsafe/` index is written when the run writes it: same bytes, its own time.
    const same = (a: TreeFile | undefined, b: TreeFile | undefined, path = '') =>
      a !== undefined &&
      b !== undefined &&
      a.md5 === b.md5 &&
      a.bytes === b.bytes &&
      (a.mtimeMs === b.mtimeMs || path === UNSAFE_INDEX);

    expect(backup.failed).toEqual([]);
    expect(pulled.failures).toEqual([]);
    expect(backup.transferred).toBe(assets.length);
    expect(pulled.downloaded).toBeGreaterThan(assets.length);
    expect([...fromBackup.keys()].sort()).toEqual([...fromPull.keys()].sort());
    const different = [...fromBackup].filter(([path, file]) => !same(file, fromPull.get(path), path));
    expect(different.map(([path]) => path)).toEqual([]);
    expect(await differencesFromLibrary(backupDir, bed.double.library)).toEqual([]);
  });

  it('write manifests that list the same assets', async () => {
    const backupIds = await manifestIds(backupDir, backup.manifest ?? 'no manifest');
    const pulledIds = await manifestIds(pullDir, manifestKey(cycleRunId));

    expect(backupIds).toHaveLength(bed.double.library.size);
    expect(backupIds).toEqual(pulledIds);
  });
});

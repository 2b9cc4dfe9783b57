import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ManifestEntry } from '../shared/engine/manifest.js';
import { generateLibrary, startCloudinaryDouble, type CloudinaryDouble } from './double/index.js';
import {
  backupEnv,
  differencesFromLibrary,
  freshFolder,
  keyOf,
  removeFolders,
  TINY_SIZES,
  treeOf,
} from './support/backupBed.js';
import { runCommand } from './support/cliChild.js';

describe(
  'files saved under _unsafe/ are named in an index, the manifest and the --json events',
  { timeout: 120_000 },
  () => {
    let double: CloudinaryDouble;

    beforeAll(async () => {
      double = await startCloudinaryDouble({
        library: generateLibrary({
          seed: 'unsafe-index',
          counts: { image: { upload: 4 }, raw: { upload: 2 } },
          sizes: TINY_SIZES,
          awkwardIds: true,
        }),
      });
    });
    afterAll(async () => {
      await double?.close();
      await removeFolders();
    });

    it('npm run backup -- --json says where every asset went, and _unsafe/INDEX.tsv says which asset each hashed file is', async () => {
      const dest = freshFolder('unsafe-index');
      const assets = double.library.all();

      const run = await runCommand('shared/cli/backup.ts', ['--dest', dest, '--json'], backupEnv(double));

      const events = run.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { event: string; id?: string; path?: string; manifest?: string });
      const assetEvents = events.filter((e) => e.event === 'asset');
      const summary = events.find((e) => e.event === 'summary');
      const tree = await treeOf(dest);
      const unsafeFiles = [...tree.keys()].filter(
        (p) => p.startsWith('_unsafe/') && p !== '_unsafe/INDEX.tsv',
      );
      const index = (await readFile(join(dest, '_unsafe', 'INDEX.tsv'), 'utf8')).trim().split('\n');
      const rows = index.slice(1).map((line) => line.split('\t'));
      const manifest = gunzipSync(await readFile(join(dest, ...(summary?.manifest ?? 'none').split('/'))))
        .toString('utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as ManifestEntry);

      expect(run.code, run.stderr).toBe(0);
      expect(await differencesFromLibrary(dest, double.library)).toEqual([]);
      expect(unsafeFiles.length).toBeGreaterThanOrEqual(3);
      // Every event's path is the asset's file.
      expect(assetEvents).toHaveLength(assets.length);
      for (const event of assetEvents)
        expect(existsSync(join(dest, ...(event.path ?? '?').split('/'))), event.id).toBe(true);
      // The index: a header, then one row per hashed file with the asset, the reason and the key.
      expect(index[0]).toBe('file\tasset\twhy\tkey');
      expect(rows.map((row) => `_unsafe/${row[0]}`).sort()).toEqual(unsafeFiles.sort());
      const keys = new Set(assets.map(keyOf));
      for (const [file, asset, why, key] of rows) {
        expect(keys.has(key ?? ''), `${file} holds a key of the library`).toBe(true);
        expect(asset, `${file}: asset`).toMatch(/^(image|video|raw)\/upload\/./u);
        expect(why, `${file}: why`).not.toBe('');
      }
      // The manifest says where each asset's file is.
      expect(manifest).toHaveLength(assets.length);
      for (const entry of manifest) {
        expect(entry.localPath, entry.id).toBe(assetEvents.find((e) => e.id === entry.id)?.path);
      }
    });
  },
);

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runBackup } from '../shared/backup/runBackup.js';
import { SqliteStateStore } from '../shared/local/SqliteStateStore.js';
import { generateLibrary, startCloudinaryDouble } from './double/index.js';
import {
  backupOptions,
  fastSettings,
  freshFolder,
  keyOf,
  removeFolders,
  TINY_SIZES,
} from './support/backupBed.js';
import { idOf } from './support/pipelineBed.js';

const DAY_MS = 86_400_000;

describe('npm run backup, day after day', { timeout: 180_000 }, () => {
  afterAll(removeFolders);

  it('copies only what changed since yesterday, copies renamed files inside the folder, and finds deletions at the reconciliation', async () => {
    const library = generateLibrary({
      seed: 'local-daily',
      counts: { image: { upload: 30 } },
      sizes: TINY_SIZES,
    });
    let now = new Date('2026-03-01T10:00:00Z');
    const double = await startCloudinaryDouble({ library, now: () => now });
    const dest = freshFolder('daily');
    const settings = fastSettings({ reconcileEveryDays: 7 });
    const run = () => runBackup(backupOptions(double, dest, { settings, now: () => now }));
    try {
      const first = await run();
      expect(first.transferred).toBe(30);

      now = new Date(now.getTime() + DAY_MS);
      const [a, b, c, gone] = library.all();
      const renamed = [a, b].map((x) =>
        library.rename('image', 'upload', x!.public_id, `renamed/${x!.public_id}`),
      );
      library.update('image', 'upload', c!.public_id, { tags: ['edited'] });
      library.delete('image', 'upload', gone!.public_id);
      const added = library.add({ publicId: 'new/one', resourceType: 'image', bytes: 700 });
      now = new Date(now.getTime() + 60_000);
      double.counters.reset();

      const daily = await run();

      expect(daily.listed, 'two renamed, one tagged, one added').toBe(4);
      expect(daily.transferred).toBe(3);
      expect(double.counters.deliveryRequests + double.counters.downloadApiRequests, 'only the new one').toBe(
        1,
      );
      for (const [i, x] of renamed.entries()) {
        const copy = await readFile(join(dest, keyOf(x)));
        const original = await readFile(join(dest, keyOf([a, b][i]!)));
        expect(copy.equals(original), 'the renamed copy has the same bytes; the old one stays').toBe(true);
      }
      const state = new SqliteStateStore(dest);
      try {
        const states = await state.getMany([a, b, gone, added, ...renamed].map((x) => idOf(x!)));
        expect(states.get(idOf(a!))).toMatchObject({ status: 'renamed', renamedTo: idOf(renamed[0]!) });
        expect(states.get(idOf(renamed[1]!))).toMatchObject({ status: 'replicated', assetId: b!.asset_id });
        expect(states.get(idOf(gone!))?.status, 'deletions wait for the reconciliation').toBe('replicated');
      } finally {
        state.close();
      }

      now = new Date(now.getTime() + 7 * DAY_MS);
      double.counters.reset();
      const weekly = await run();

      expect(weekly.listed).toBe(library.size);
      expect(weekly.transferred).toBe(0);
      expect(weekly.deletedAtSource).toBe(1);
      expect(double.counters.deliveryRequests + double.counters.downloadApiRequests).toBe(0);
    } finally {
      await double.close();
    }
  });
});

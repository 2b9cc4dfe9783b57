import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { runBackup, type BackupEvent } from '../shared/backup/runBackup.js';
import { generateLibrary, startCloudinaryDouble, type CloudinaryDouble } from './double/index.js';
import {
  backupOptions,
  differencesFromLibrary,
  fastSettings,
  freshFolder,
  removeFolders,
  TINY_SIZES,
} from './support/backupBed.js';

const doubles: CloudinaryDouble[] = [];
afterEach(async () => {
  for (const double of doubles.splice(0)) await double.close();
});
afterAll(removeFolders);

describe('npm run backup on a library far larger than its queue', () => {
  it('lists at most two pages ahead of the copies, so its memory does not grow with the library', async () => {
    const pageSize = 5;
    const double = await startCloudinaryDouble({
      library: generateLibrary({ seed: 'backlog', counts: { image: { upload: 60 } }, sizes: TINY_SIZES }),
    });
    doubles.push(double);
    // Copies slower than listing: without a bound the listing would queue the whole library at once.
    double.faults.add({ route: 'delivery', kind: 'latency', ms: 20 });
    const dest = freshFolder('backlog');
    let settled = 0;
    const aheadAtEachPage: number[] = [];
    const onEvent = (event: BackupEvent): void => {
      if (event.kind === 'asset') settled += 1;
      if (event.kind === 'listed') aheadAtEachPage.push(event.totalEnqueued - settled);
    };

    const summary = await runBackup(
      backupOptions(double, dest, {
        settings: fastSettings({ pageSize, resourceTypes: ['image'], deliveryTypes: ['upload'] }),
        concurrency: 2,
        onEvent,
      }),
    );

    expect(summary.status).toBe('completed');
    expect(summary.transferred).toBe(60);
    expect(aheadAtEachPage).toHaveLength(12);
    // Two pages queued, plus the page just listed.
    expect(Math.max(...aheadAtEachPage)).toBeLessThan(3 * pageSize);
    expect(await differencesFromLibrary(dest, double.library)).toEqual([]);
  });
});

import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runBackup } from '../shared/backup/runBackup.js';
import { restoreMain } from '../shared/cli/restore.js';
import type { RestoreSummary } from '../shared/restore/types.js';
import { generateLibrary, startCloudinaryDouble } from './double/index.js';
import {
  backupEnv,
  backupOptions,
  captureStreams,
  fastSettings,
  freshFolder,
  removeFolders,
  TINY_SIZES,
} from './support/backupBed.js';

const DAY_MS = 86_400_000;

function summaryOf(out: string): RestoreSummary {
  return JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as RestoreSummary;
}

describe('npm run restore after daily runs that listed only what changed', { timeout: 180_000 }, () => {
  afterAll(removeFolders);

  it('puts back the whole library, at its latest versions, not only what the last run listed', async () => {
    const library = generateLibrary({
      seed: 'restore-daily',
      counts: { image: { upload: 12 } },
      sizes: TINY_SIZES,
    });
    let now = new Date('2026-03-01T10:00:00Z');
    const double = await startCloudinaryDouble({ library, now: () => now });
    const dest = freshFolder('restore-daily');
    const settings = fastSettings({ reconcileEveryDays: 7 });
    const run = () => runBackup(backupOptions(double, dest, { settings, now: () => now }));
    try {
      expect((await run()).transferred).toBe(12);
      now = new Date(now.getTime() + DAY_MS);
      const [edited] = library.all();
      const overwritten = library.overwrite('image', 'upload', edited!.public_id, 900);
      library.add({ publicId: 'new/one', resourceType: 'image', bytes: 700 });
      now = new Date(now.getTime() + 60_000);
      const daily = await run();
      expect(daily.listing, 'the second run lists only the changes').toBe('changes');
      expect(daily.listed).toBe(2);

      const expected = new Map(
        library.all().map((a) => [`${a.resource_type}/${a.type}/${a.public_id}`, a.bytes]),
      );
      for (const asset of library.all()) library.delete(asset.resource_type, asset.type, asset.public_id);
      // The upload API checks the SDK's signing time (the machine's) against its own clock.
      now = new Date();
      const { streams, out, err } = captureStreams();
      const code = await restoreMain(
        ['--from', dest, '--journal', join(freshFolder('restore-daily-journal'), 'j.jsonl'), '--json'],
        streams,
        backupEnv(double),
      );

      expect(code, err()).toBe(0);
      expect(summaryOf(out()).restored).toBe(13);
      const back = new Map(
        library.all().map((a) => [`${a.resource_type}/${a.type}/${a.public_id}`, a.bytes]),
      );
      expect(back).toEqual(expected);
      expect(back.get(`image/upload/${overwritten.public_id}`), 'the overwrite, not the first version').toBe(
        900,
      );

      // Nothing was deleted at Cloudinary before the restore's backup runs: nothing to undo.
      const deletedOnly = captureStreams();
      expect(
        await restoreMain(
          ['--from', dest, '--deleted-only', '--journal', join(freshFolder('j2'), 'j.jsonl'), '--json'],
          deletedOnly.streams,
          backupEnv(double),
        ),
        deletedOnly.err(),
      ).toBe(0);
      expect(summaryOf(deletedOnly.out()).selected).toBe(0);
    } finally {
      await double.close();
    }
  });
});

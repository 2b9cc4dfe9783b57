import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { runBackup } from '../shared/backup/runBackup.js';
import { backupDisplay } from '../shared/cli/backup.js';
import { generateLibrary, startCloudinaryDouble, type CloudinaryDouble } from './double/index.js';
import {
  backupEnv,
  backupOptions,
  captureStreams,
  fastSettings,
  freshFolder,
  removeFolders,
} from './support/backupBed.js';
import { runCommand } from './support/cliChild.js';
import { emptySummary } from '../shared/backup/summary.js';

const doubles: CloudinaryDouble[] = [];

/** 100 photos, listed 10 a page: 10 Admin calls for the whole account. */
async function startDouble(): Promise<CloudinaryDouble> {
  const double = await startCloudinaryDouble({
    library: generateLibrary({
      seed: 'dry-budget',
      counts: { image: { upload: 100 } },
      sizes: { image: [1_000, 2_000] },
    }),
  });
  doubles.push(double);
  // Early in an hour, so the budget's reset is ahead on the double's clock.
  const at = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000 + 60_000);
  double.clock.set(at);
  return double;
}

describe(
  'npm run backup -- --dry-run on a library larger than the hourly Admin budget',
  { timeout: 120_000 },
  () => {
    afterEach(async () => {
      for (const double of doubles.splice(0)) await double.close();
    });
    afterAll(removeFolders);

    it('with --no-wait stops at the reserve, says how far it got, and exits 3', async () => {
      const double = await startDouble();
      double.setRateLimit(6);
      const dest = freshFolder('dry-no-wait');

      const run = await runCommand(
        'shared/cli/backup.ts',
        ['--dest', dest, '--dry-run', '--no-wait'],
        backupEnv(double, {
          ADMIN_RESERVE: '2',
          LISTING_PAGE_SIZE: '10',
          RESOURCE_TYPES: 'image',
          DELIVERY_TYPES: 'upload',
        }),
      );

      expect(run.stderr).toBe('');
      expect(run.code).toBe(3);
      expect(run.stdout).toMatch(
        /Dry run of .+ stopped at the Admin API limit \(--no-wait\) after 40 assets: so far 40 would be copied/u,
      );
      expect(double.rateLimitRemaining(), 'the reserve is kept').toBe(2);
      expect(double.counters.rateLimited).toBe(0);
    });

    it('waits out the spent budget like a real run and then lists the rest of the account', async () => {
      const double = await startDouble();
      double.setRateLimit(6);
      const waits: Date[] = [];

      const summary = await runBackup(
        backupOptions(double, freshFolder('dry-wait'), {
          dryRun: true,
          settings: fastSettings({
            pageSize: 10,
            adminReserve: 2,
            resourceTypes: ['image'],
            deliveryTypes: ['upload'],
          }),
          sleepUntil: async (at) => {
            waits.push(at);
            double.clock.set(at);
          },
        }),
      );

      expect(summary.status).toBe('dry-run');
      expect(summary.listed).toBe(100);
      expect(summary.toTransfer).toBe(100);
      expect(summary.resumeAt).toBeUndefined();
      expect(waits.length).toBeGreaterThanOrEqual(2);
      expect(double.counters.rateLimited).toBe(0);
    });

    it('ends its piped progress with the number of assets it listed last, not an older one', async () => {
      let now = 0;
      const pipe = captureStreams(false);
      const display = backupDisplay(pipe.streams.stdout, false, { now: () => now });
      const pages = 10;

      for (let page = 1; page <= pages; page++) {
        now += 4_000;
        display.onEvent({
          kind: 'listed',
          listed: 500,
          enqueued: 0,
          totalListed: page * 500,
          totalEnqueued: page * 500,
          enqueuedBytes: page * 500_000,
        });
      }
      const printed = pipe.out().trim().split('\n');
      display.finish({
        ...emptySummary('/backup', 'dry-run'),
        listed: 5_000,
        toTransfer: 5_000,
        toTransferBytes: 5_000_000,
      });
      const lines = pipe.out().trim().split('\n');

      // A line every 10 s, each with the count of the page that brought it.
      expect(printed).toEqual([
        'listing… 1,500 assets seen',
        'listing… 3,000 assets seen',
        'listing… 4,500 assets seen',
      ]);
      expect(lines.at(-2)).toBe('listing… 5,000 assets seen');
      expect(lines.at(-1)).toMatch(/^Dry run of \/backup: 5000 assets at Cloudinary/u);
    });
  },
);

import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../shared/backup/runBackup.js';
import { parseCloudinaryUrl } from '../shared/config.js';
import { FolderBackup } from '../shared/restore/FolderBackup.js';
import { runRestore, type RestoreOptions } from '../shared/restore/runRestore.js';
import type { RestoreEvent } from '../shared/restore/types.js';
import { generateLibrary, startCloudinaryDouble, type CloudinaryDouble } from './double/index.js';
import { backupOptions, freshFolder, removeFolders } from './support/backupBed.js';

/**
 * One library backed up once, restored into targets that answer differently: a plan too small for
 * some files, existing assets with other bytes (flagged `existing` or not), failing requests.
 */
describe(
  'restore reports what Cloudinary refuses, keeps what exists, and retries what fails',
  { timeout: 120_000 },
  () => {
    let source: CloudinaryDouble;
    let dest: string;
    const targets: CloudinaryDouble[] = [];

    async function target(
      options: Parameters<typeof startCloudinaryDouble>[0] = {},
    ): Promise<CloudinaryDouble> {
      const double = await startCloudinaryDouble({ cloudName: `target${targets.length}`, ...options });
      targets.push(double);
      return double;
    }

    async function restoreInto(double: CloudinaryDouble, overrides: Partial<RestoreOptions> = {}) {
      const events: RestoreEvent[] = [];
      const summary = await runRestore({
        reader: await FolderBackup.open(dest),
        credentials: parseCloudinaryUrl(double.cloudinaryUrl),
        selection: {},
        journalFile: join(freshFolder('journal'), 'j.jsonl'),
        retry: { sleep: async () => undefined, random: () => 0 },
        onEvent: (event) => events.push(event),
        ...overrides,
      });
      return { summary, events };
    }

    beforeAll(async () => {
      source = await startCloudinaryDouble({
        library: generateLibrary({
          seed: 'refusals',
          counts: { image: { upload: 6 }, raw: { upload: 2 } },
          sizes: { image: [5_000, 9_000], raw: [1_000, 2_000] },
          large: [{ resourceType: 'image', bytes: 150_000, publicId: 'large/poster' }],
        }),
      });
      dest = freshFolder('refusals');
      const backup = await runBackup(backupOptions(source, dest));
      if (backup.failed.length > 0) throw new Error(JSON.stringify(backup.failed));
    });
    afterAll(async () => {
      for (const double of [source, ...targets]) await double?.close();
      await removeFolders();
    });

    it('uploads a file larger than one request in chunks, verified, and lists a file over the plan’s limit with Cloudinary’s reason', async () => {
      const into = await target({
        uploadLimits: { maxRequestBytes: 40_000, maxFileBytes: { image: 100_000, video: 1e9, raw: 1e9 } },
      });

      const small = await restoreInto(into, { chunkBytes: 32_000 });

      expect(small.summary.refused).toEqual([
        {
          id: 'image/upload/large/poster',
          reason: expect.stringMatching(/File size too large\. Got \d+\. Maximum is 100000\./u) as unknown,
        },
      ]);
      expect(small.summary.restored).toBe(8);
      const roomy = await target({ uploadLimits: { maxRequestBytes: 40_000 } });
      const before = roomy.counters.uploadRequests;
      const big = await restoreInto(roomy, {
        chunkBytes: 32_000,
        selection: { publicIds: ['large/poster'] },
      });
      expect(big.summary).toMatchObject({ restored: 1, refused: [], failed: [] });
      expect(roomy.counters.uploadRequests - before).toBe(5);
      const poster = roomy.library.get('image', 'upload', 'large/poster');
      const original = source.library.get('image', 'upload', 'large/poster');
      expect(poster && (await roomy.library.md5Of(poster))).toBe(
        original && (await source.library.md5Of(original)),
      );
    });

    it.each([
      ['flagged existing: true', true],
      ['not flagged', false],
    ])(
      'keeps an existing asset with other bytes and says why (answer %s); --overwrite replaces it',
      async (_label, flag) => {
        const into = await target({ flagExistingUploads: flag });
        const first = source.library.all().find((a) => a.resource_type === 'image');
        if (!first) throw new Error('no image');
        into.library.add({
          publicId: first.public_id,
          resourceType: 'image',
          format: first.format,
          bytes: 321,
        });

        const kept = await restoreInto(into);

        expect(kept.summary.skipped).toEqual([
          {
            id: `image/upload/${first.public_id}`,
            reason: expect.stringMatching(/exists at the target with other content.*--overwrite/u) as unknown,
          },
        ]);
        expect(into.library.get('image', 'upload', first.public_id)?.bytes).toBe(321);
        expect(kept.summary.restored).toBe(8);

        const replaced = await restoreInto(into, {
          overwrite: true,
          selection: { publicIds: [first.public_id] },
        });
        expect(replaced.summary).toMatchObject({ restored: 1, skipped: [] });
        expect(into.library.get('image', 'upload', first.public_id)?.bytes).toBe(first.bytes);
      },
    );

    it('retries uploads answered 503, 420 and 500, then restores every asset', async () => {
      const into = await target();
      into.faults.add({ route: 'upload', kind: 'status', status: 503, times: 2 });
      into.faults.add({ route: 'upload', kind: 'status', status: 420, times: 1 });
      into.faults.add({ route: 'upload', kind: 'status', status: 500, times: 1 });

      const { summary } = await restoreInto(into, { concurrency: 1 });

      expect(summary).toMatchObject({ restored: 9, failed: [], refused: [] });
      expect(into.library.size).toBe(9);
    });

    it('restores even when the Admin API budget is spent: uploads are not rate-limited', async () => {
      const into = await target({ rateLimitPerHour: 0 });

      const { summary } = await restoreInto(into, { selection: { resourceType: 'raw' } });

      expect(summary).toMatchObject({ restored: 2, failed: [] });
      expect(into.counters.rateLimited).toBe(1);
    });

    it('--dry-run lists what it would restore and uploads nothing', async () => {
      const into = await target();

      const { summary, events } = await restoreInto(into, {
        dryRun: true,
        selection: { resourceType: 'raw' },
      });

      expect(summary).toMatchObject({ selected: 2, restored: 0, dryRun: true });
      expect(events.map((e) => e.outcome)).toEqual(['would-restore', 'would-restore']);
      expect(into.counters.uploadRequests).toBe(0);
    });
  },
);

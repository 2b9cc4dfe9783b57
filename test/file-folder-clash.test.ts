import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCycle } from '../functions/cycle.js';
import { runPull } from '../shared/pull/index.js';
import { generateLibrary } from './double/index.js';
import {
  backupEnv,
  differencesFromLibrary,
  freshFolder,
  removeFolders,
  servedBytes,
  TINY_SIZES,
  treeOf,
} from './support/backupBed.js';
import { runCommand } from './support/cliChild.js';
import { createPipelineBed, type PipelineBed } from './support/pipelineBed.js';

/** Path → MD5 of every file under a destination (control folder and manifests left out). */
async function filesOf(root: string): Promise<Record<string, string>> {
  const tree = await treeOf(root);
  return Object.fromEntries([...tree].map(([path, file]) => [path, file.md5]).sort());
}

describe(
  'a raw file and a folder of the same name (dup/name and dup/name/inner.txt)',
  { timeout: 240_000 },
  () => {
    let bed: PipelineBed;

    beforeAll(async () => {
      bed = await createPipelineBed(
        {
          library: generateLibrary({
            seed: 'file-folder',
            counts: { image: { upload: 3 }, raw: { upload: 2 } },
            sizes: TINY_SIZES,
          }),
        },
        { DELIVERY_TYPES: 'upload' },
      );
    });
    afterAll(async () => {
      await bed?.close();
      await removeFolders();
    });

    const backup = (dest: string) =>
      runCommand(
        'shared/cli/backup.ts',
        ['--dest', dest],
        backupEnv(bed.double, { DELIVERY_TYPES: 'upload' }),
      );
    const pull = (dest: string) =>
      runPull(
        { dest, bucket: bed.aws.bucket },
        { s3: bed.aws.clients.s3, out: { write: () => true }, mode: 'quiet' },
      );

    it('backup and pull write the same tree, in any order of arrival, and every asset lands somewhere', async () => {
      // The file first, in an earlier run, then the folder's asset.
      bed.double.library.add({ publicId: 'dup/name', resourceType: 'raw', bytes: 700 });
      const laterBackup = freshFolder('clash-backup-later');
      const laterPull = freshFolder('clash-pull-later');
      const first = await backup(laterBackup);
      await runCycle({ workers: 1 });
      const firstPull = await pull(laterPull);
      bed.double.library.add({ publicId: 'dup/name/inner.txt', resourceType: 'raw', bytes: 900 });

      const second = await backup(laterBackup);
      await runCycle({ workers: 1 });
      const secondPull = await pull(laterPull);
      const servedBefore = servedBytes(bed.double);
      const third = await backup(laterBackup);
      const servedByThird = servedBytes(bed.double) - servedBefore;
      const freshBackup = freshFolder('clash-backup-fresh');
      const fresh = await backup(freshBackup);
      const freshPull = freshFolder('clash-pull-fresh');
      const freshPulled = await pull(freshPull);

      for (const run of [first, second, third, fresh]) expect(run.code, run.stdout + run.stderr).toBe(0);
      for (const summary of [firstPull, secondPull, freshPulled]) expect(summary.failures).toEqual([]);
      expect(servedByThird, 'nothing downloaded again').toBe(0);
      const tree = await filesOf(freshPull);
      expect(tree['assets/raw/upload/dup/name/inner.txt']).toBeDefined();
      expect(
        Object.keys(tree).filter((path) => path.startsWith('_unsafe/') && path !== '_unsafe/INDEX.tsv'),
      ).toHaveLength(1);
      expect(await filesOf(freshBackup)).toEqual(tree);
      expect(await filesOf(laterBackup)).toEqual(tree);
      expect(await filesOf(laterPull)).toEqual(tree);
      expect(await differencesFromLibrary(freshBackup, bed.double.library)).toEqual([]);
    });
  },
);

import { afterAll, describe, expect, it } from 'vitest';
import { backupMain } from '../shared/cli/backup.js';
import { SqliteStateStore } from '../shared/local/SqliteStateStore.js';
import { generateLibrary, startCloudinaryDouble, type CloudinaryDouble } from './double/index.js';
import type { DoubleAsset } from './double/types.js';
import { backupEnv, captureStreams, freshFolder, removeFolders } from './support/backupBed.js';
import { idOf } from './support/pipelineBed.js';

function downloadsOf(double: CloudinaryDouble, asset: DoubleAsset): number {
  return double.requestLog.filter(
    (entry) => entry.publicId === asset.public_id && (entry.kind === 'delivery' || entry.kind === 'download'),
  ).length;
}

describe('npm run backup and an asset that fails permanently', () => {
  const doubles: CloudinaryDouble[] = [];
  afterAll(async () => {
    await Promise.all(doubles.map((double) => double.close()));
    await removeFolders();
  });

  it('does not download it again on the next run, and retries it with --redrive', async () => {
    const double = await startCloudinaryDouble({
      library: generateLibrary({
        seed: 'backup-quarantine',
        counts: { image: { upload: 4 } },
        sizes: { image: [1000, 4000] },
      }),
    });
    doubles.push(double);
    const refused = double.library.all()[0] as DoubleAsset;
    const fault = double.faults.add({
      route: ['delivery', 'download'],
      publicId: refused.public_id,
      kind: 'status',
      status: 403,
    });
    const dest = freshFolder('quarantine');
    const env = backupEnv(double, { DELIVERY_TYPES: 'upload', RESOURCE_TYPES: 'image' });

    const first = await backupMain(['--dest', dest], captureStreams().streams, env);
    const tried = downloadsOf(double, refused);
    const nextDay = await backupMain(['--dest', dest], captureStreams().streams, env);
    const afterNextDay = downloadsOf(double, refused);
    double.faults.remove(fault);
    const redriven = await backupMain(['--dest', dest, '--redrive'], captureStreams().streams, env);
    const state = new SqliteStateStore(dest);
    const stored = (await state.getMany([idOf(refused)])).get(idOf(refused));
    state.close();

    expect(first).toBe(1);
    expect(tried).toBeGreaterThan(0);
    expect(nextDay).toBe(0);
    expect(afterNextDay).toBe(tried);
    expect(redriven).toBe(0);
    expect(downloadsOf(double, refused)).toBeGreaterThan(tried);
    expect(stored?.status).toBe('replicated');
  });
});

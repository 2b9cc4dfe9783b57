import { spawn } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../shared/backup/runBackup.js';
import { LOCAL_CONTROL_DIR } from '../shared/constants.js';
import { generateLibrary, startCloudinaryDouble, type CloudinaryDouble } from './double/index.js';
import {
  backupEnv,
  backupOptions,
  countFiles,
  differencesFromLibrary,
  expectedLayout,
  fastSettings,
  freshFolder,
  REPO,
  removeFolders,
  servedBytes,
  treeOf,
  waitUntil,
} from './support/backupBed.js';

const CONCURRENCY = 4;
/** The product's default: a reconciliation every 7 days, change listings in between. */
const WEEKLY = { RECONCILE_EVERY_DAYS: '7' };

describe('a backup killed with kill -9', { timeout: 90_000 }, () => {
  let double: CloudinaryDouble;

  beforeAll(async () => {
    double = await startCloudinaryDouble({
      library: generateLibrary({
        seed: 'kill',
        counts: { image: { upload: 24, private: 4, authenticated: 2 }, raw: { upload: 4 } },
        sizes: { image: [20_000, 60_000], raw: [20_000, 40_000] },
        awkwardIds: 4,
      }),
    });
  });
  afterAll(async () => {
    await double?.close();
    await removeFolders();
  });

  it('leaves no half file under a final name, and the next run finishes with at most one file per worker fetched twice', async () => {
    const assets = double.library.all();
    const libraryBytes = assets.reduce((sum, asset) => sum + asset.bytes, 0);
    const largest = assets.map((asset) => asset.bytes).sort((a, b) => b - a);
    const inFlightAllowance = largest.slice(0, CONCURRENCY).reduce((sum, bytes) => sum + bytes, 0);
    const dest = freshFolder('kill');
    // Slow enough that the kill lands while four downloads are under way.
    const slow = double.faults.add({
      route: ['delivery', 'download'],
      kind: 'bandwidth',
      bytesPerSecond: 40_000,
    });
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'shared/cli/backup.ts',
        '--dest',
        dest,
        '--concurrency',
        String(CONCURRENCY),
        '--json',
      ],
      // The default schedule (a full listing weekly, changes in between): the run after a kill must
      // still list everything, since the killed run's copies never finished.
      { cwd: REPO, env: backupEnv(double, WEEKLY), stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.once('exit', (_code, signal) => resolve(signal)),
    );
    await waitUntil(async () => (await countFiles(join(dest, 'assets'))) >= 5, 30_000, 'five copied files');
    child.kill('SIGKILL');
    const signal = await exited;
    double.faults.remove(slow);
    const firstRunBytes = servedBytes(double);
    const requestsBefore = double.requestLog.length;
    const afterKill = await treeOf(dest);
    const layout = expectedLayout(assets);
    const wrongAfterKill: string[] = [];
    for (const [path, file] of afterKill) {
      const asset = layout.get(path);
      if (!asset || file.md5 !== (await double.library.md5Of(asset))) wrongAfterKill.push(path);
    }
    const partialsAfterKill = await readdir(join(dest, LOCAL_CONTROL_DIR, 'tmp'));

    const summary = await runBackup(
      backupOptions(double, dest, {
        concurrency: CONCURRENCY,
        settings: fastSettings({ reconcileEveryDays: 7 }),
      }),
    );

    const total = servedBytes(double);
    const refetched = double.requestLog
      .slice(requestsBefore)
      .filter((entry) => entry.kind === 'delivery' || entry.kind === 'download')
      .map((entry) => entry.publicId);
    const presentAfterKill = [...afterKill.keys()].map((path) => layout.get(path)?.public_id);
    const fetchedTwice = refetched.filter((id) => presentAfterKill.includes(id));
    console.log(
      `kill -9: ${afterKill.size} of ${assets.length} files there after the kill (${partialsAfterKill.length} partial), ` +
        `${firstRunBytes} + ${total - firstRunBytes} bytes served for a ${libraryBytes}-byte library: ` +
        `ratio ${(total / libraryBytes).toFixed(3)}, allowance ${((libraryBytes + inFlightAllowance) / libraryBytes).toFixed(3)}`,
    );
    expect(signal).toBe('SIGKILL');
    expect(stderr).toBe('');
    expect(afterKill.size).toBeGreaterThanOrEqual(5);
    expect(afterKill.size, 'the kill came before the end').toBeLessThan(assets.length);
    expect(wrongAfterKill, 'half or wrong files under a final name').toEqual([]);
    expect(summary.failed).toEqual([]);
    expect(await differencesFromLibrary(dest, double.library)).toEqual([]);
    expect(total).toBeLessThanOrEqual(libraryBytes + inFlightAllowance);
    expect(fetchedTwice.length, 'finished files fetched again').toBeLessThanOrEqual(CONCURRENCY);
    expect(await readdir(join(dest, LOCAL_CONTROL_DIR, 'tmp')), 'partial files cleared').toEqual([]);
  });
});

/** Bytes of the resumable partial files in the control folder (what a killed run leaves to continue). */
async function partialBytes(dest: string): Promise<number> {
  const dir = join(dest, LOCAL_CONTROL_DIR, 'tmp');
  let total = 0;
  for (const name of await readdir(dir).catch(() => [])) {
    total += (await stat(join(dir, name)).catch(() => undefined))?.size ?? 0;
  }
  return total;
}

describe('a backup killed with kill -9 in the middle of its files', { timeout: 120_000 }, () => {
  let double: CloudinaryDouble;

  beforeAll(async () => {
    double = await startCloudinaryDouble({
      library: generateLibrary({
        seed: 'kill-mid-file',
        counts: { video: { upload: 4 } },
        sizes: { video: [2_000_000, 4_000_000] },
      }),
    });
  });
  afterAll(async () => {
    await double?.close();
  });

  it('continues every partial file where it stopped: the library is fetched at most 1.05 times over', async () => {
    const assets = double.library.all();
    const libraryBytes = assets.reduce((sum, asset) => sum + asset.bytes, 0);
    const dest = freshFolder('kill-mid-file');
    const slow = double.faults.add({
      route: ['delivery', 'download'],
      kind: 'bandwidth',
      bytesPerSecond: 400_000,
    });
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'shared/cli/backup.ts', '--dest', dest, '--concurrency', String(CONCURRENCY)],
      { cwd: REPO, env: backupEnv(double), stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    // Killed once a third of the library sits in partial files: every file is mid-way.
    await waitUntil(
      async () => (await partialBytes(dest)) >= libraryBytes / 3,
      60_000,
      'a third of the library in partial files',
    );
    child.kill('SIGKILL');
    await exited;
    double.faults.remove(slow);
    const keptAtKill = await partialBytes(dest);
    const firstRunBytes = servedBytes(double);

    const summary = await runBackup(backupOptions(double, dest, { concurrency: CONCURRENCY }));

    const waste = servedBytes(double) / libraryBytes;
    console.log(
      `kill -9 mid-file: ${keptAtKill} bytes kept in partial files, ${firstRunBytes} + ${servedBytes(double) - firstRunBytes} bytes served for ${libraryBytes}: waste ${waste.toFixed(3)}`,
    );
    expect(stderr).toBe('');
    expect(keptAtKill).toBeLessThan(libraryBytes);
    expect(summary.failed).toEqual([]);
    expect(await differencesFromLibrary(dest, double.library)).toEqual([]);
    expect(waste).toBeLessThanOrEqual(1.05);
    expect(await readdir(join(dest, LOCAL_CONTROL_DIR, 'tmp')), 'partial files cleared').toEqual([]);
  });

  it('a download cut off midway is continued from where it stopped in the same run, not fetched again from its first byte', async () => {
    const [asset] = double.library.all();
    if (!asset) throw new Error('no asset');
    const dest = freshFolder('cut-off');
    double.counters.reset();
    const cut = double.faults.add({
      route: ['delivery', 'download'],
      publicId: asset.public_id,
      // Closed cleanly before the announced length: every byte sent arrives, the rest is missing.
      kind: 'short',
      afterBytes: 1_000_000,
      times: 1,
    });
    const before = double.requestLog.length;

    const summary = await runBackup(backupOptions(double, dest, { concurrency: CONCURRENCY }));

    double.faults.remove(cut);
    const requests = double.requestLog
      .slice(before)
      .filter(
        (entry) =>
          entry.publicId === asset.public_id && (entry.kind === 'delivery' || entry.kind === 'download'),
      );
    expect(summary.failed).toEqual([]);
    expect(await differencesFromLibrary(dest, double.library)).toEqual([]);
    expect(requests.map((entry) => entry.status)).toEqual([200, 206]);
    // Only what sat in the process's stream buffers when the body failed is fetched twice.
    expect(requests.reduce((sum, entry) => sum + (entry.bytes ?? 0), 0)).toBeLessThanOrEqual(
      asset.bytes + 256 * 1024,
    );
  });
});

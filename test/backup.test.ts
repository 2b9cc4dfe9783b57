import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { runBackup } from '../shared/backup/runBackup.js';
import { backupDisplay, backupMain, EXIT_PAUSED } from '../shared/cli/backup.js';
import { LOCAL_CONTROL_DIR } from '../shared/constants.js';
import { formatBytes } from '../shared/progress.js';
import {
  generateLibrary,
  startCloudinaryDouble,
  type CloudinaryDouble,
  type DoubleAsset,
  type DoubleOptions,
  type GenerateLibrarySpec,
} from './double/index.js';
import {
  backupEnv,
  backupOptions,
  captureStreams,
  differencesFromLibrary,
  expectedLayout,
  fastSettings,
  freshFolder,
  keyOf,
  REPO,
  removeFolders,
  servedBytes,
  TINY_SIZES,
  treeOf,
  type TreeFile,
} from './support/backupBed.js';

const doubles: CloudinaryDouble[] = [];

async function startDouble(
  library: Partial<GenerateLibrarySpec> = {},
  options: Omit<DoubleOptions, 'library'> = {},
): Promise<CloudinaryDouble> {
  const double = await startCloudinaryDouble({
    library: generateLibrary({
      seed: 'backup',
      counts: { image: { upload: 12, private: 3, authenticated: 2 }, raw: { upload: 3 } },
      sizes: TINY_SIZES,
      ...library,
    }),
    ...options,
  });
  doubles.push(double);
  return double;
}

afterEach(async () => {
  for (const double of doubles.splice(0)) await double.close();
});
afterAll(removeFolders);

/** Every file in a folder, the control folder too: path → size, MD5 and time. */
async function everything(root: string): Promise<Map<string, TreeFile>> {
  const files = await treeOf(root, { manifests: true });
  for (const [path, file] of await treeOf(join(root, LOCAL_CONTROL_DIR))) {
    files.set(`${LOCAL_CONTROL_DIR}/${path}`, file);
  }
  return files;
}

/** The public ids the double served originals of since request number `from`. */
function downloadedIds(double: CloudinaryDouble, from = 0): string[] {
  return double.requestLog
    .slice(from)
    .filter((entry) => (entry.kind === 'delivery' || entry.kind === 'download') && entry.status === 200)
    .map((entry) => entry.publicId ?? '?')
    .sort();
}

/** The listing pages requested (search expression + cursor) that were answered. */
function listedPages(double: CloudinaryDouble): string[] {
  return double.requestLog
    .filter((entry) => entry.kind === 'search' && entry.status === 200)
    .map((entry) => `${entry.params?.expression ?? '?'} @ ${entry.params?.next_cursor ?? 'start'}`);
}

function duplicates(values: string[]): string[] {
  return values.filter((value, i) => values.indexOf(value) !== i);
}

/** The double's clock at the start of its current hour, plus a minute: hour windows stay put during a test. */
function earlyInTheHour(double: CloudinaryDouble): Date {
  const at = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000 + 60_000);
  double.clock.set(at);
  return new Date(at.getTime() + 3_600_000 - 60_000);
}

describe('npm run backup', { timeout: 60_000 }, () => {
  it('copies every asset, and a second run downloads nothing', async () => {
    const double = await startDouble();
    const dest = freshFolder('twice');
    const first = captureStreams();
    const second = captureStreams();
    const assets = double.library.all();

    const firstCode = await backupMain(['--dest', dest], first.streams, backupEnv(double));
    const afterFirst = servedBytes(double);
    const secondCode = await backupMain(['--dest', dest], second.streams, backupEnv(double));

    expect(firstCode).toBe(0);
    expect(secondCode).toBe(0);
    expect(await differencesFromLibrary(dest, double.library)).toEqual([]);
    expect(first.out()).toContain(`${assets.length} assets listed, ${assets.length} copied`);
    expect(servedBytes(double) - afterFirst, 'bytes downloaded by the second run').toBe(0);
    expect(second.out()).toContain(
      `${assets.length} assets listed, 0 copied (0 B), ${assets.length} already up to date, 0 failed.`,
    );
    expect(second.out()).toMatch(new RegExp(`Manifest .*: ${dest}/manifests/.+/manifest\\.jsonl\\.gz`, 'u'));
  });

  it('copies exactly what was overwritten or added, keeps copies of deleted assets, and prunes them only with --delete', async () => {
    const double = await startDouble({ awkwardIds: 6 });
    const library = double.library;
    const dest = freshFolder('changes');
    await backupMain(['--dest', dest], captureStreams().streams, backupEnv(double));
    const layoutBefore = expectedLayout(library.all());
    const images = library
      .all()
      .filter((a) => a.resource_type === 'image' && a.type === 'upload' && !a.tags.includes('awkward'));
    // The NFC "café crème" shares its name with the NFD one on a Mac: it lives under _unsafe/.
    const cafe = library.get('image', 'upload', 'awkward/café crème'.normalize('NFC'));
    const deleted = [images[3], images[4], cafe] as DoubleAsset[];
    const deletedPaths = [...layoutBefore].filter(([, a]) => deleted.includes(a)).map(([path]) => path);
    const overwritten = images.slice(0, 3).map((a) => library.overwrite('image', 'upload', a.public_id));
    for (const a of deleted) library.delete('image', 'upload', a.public_id);
    const added = Array.from({ length: 2 }, (_, i) =>
      library.add({ publicId: `new/photo ${i}`, resourceType: 'image', format: 'png', bytes: 3000 + i }),
    );
    // Files that are not the backup's: beside it, and next to the folder itself.
    await writeFile(join(dest, 'my notes.txt'), 'keep me');
    await writeFile(join(dirname(dest), 'escapes-the-root.jpg'), 'not yours');
    const requestsBefore = double.requestLog.length;
    const keep = captureStreams();
    const prune = captureStreams();

    const keepCode = await backupMain(['--dest', dest], keep.streams, backupEnv(double));
    const copied = downloadedIds(double, requestsBefore);
    const kept = deletedPaths.filter((path) => existsSync(join(dest, ...path.split('/'))));
    const pruneCode = await backupMain(['--dest', dest, '--delete'], prune.streams, backupEnv(double));

    expect(keepCode).toBe(0);
    expect(copied).toEqual([...overwritten, ...added].map((a) => a.public_id).sort());
    expect(keep.out()).toContain('5 copied');
    expect(keep.out()).toContain(
      '3 assets were deleted at Cloudinary; their copies are kept (use --delete to prune).',
    );
    expect(kept).toEqual(deletedPaths);
    expect(pruneCode).toBe(0);
    expect(prune.out()).toContain('0 copied');
    expect(prune.out()).toContain('3 local copies of assets deleted at Cloudinary pruned (--delete).');
    expect(deletedPaths.filter((path) => existsSync(join(dest, ...path.split('/'))))).toEqual([]);
    expect(await readFile(join(dest, 'my notes.txt'), 'utf8')).toBe('keep me');
    expect(await readFile(join(dirname(dest), 'escapes-the-root.jpg'), 'utf8')).toBe('not yours');
    expect(deletedPaths.some((path) => path.startsWith('_unsafe/'))).toBe(true);
    expect(await differencesFromLibrary(dest, library)).toEqual(['unexpected my notes.txt']);
  });

  it('shows a bar with files, bytes and an ETA on a terminal while it copies', async () => {
    const double = await startDouble();
    double.faults.add({ route: ['delivery', 'download'], kind: 'bandwidth', bytesPerSecond: 60_000 });
    const terminal = captureStreams(true);
    const total = double.library.size;

    const code = await backupMain(['--dest', freshFolder('terminal')], terminal.streams, backupEnv(double));
    const frames = terminal.out().split('\r\u001b[2K');
    const midway = frames.filter((frame) =>
      new RegExp(`^backup \\[[#-]+\\] ([0-9]+)/${total} files  .+/.+  .+/s  ETA `, 'u').test(frame),
    );

    expect(code).toBe(0);
    expect(midway.filter((frame) => !frame.includes(` ${total}/${total} files`)).length).toBeGreaterThan(0);
  });

  it('--dry-run reports what would happen and changes nothing on disk, not even creating the folder', async () => {
    const double = await startDouble();
    const library = double.library;
    const assets = library.all();
    const fresh = join(freshFolder('dry'), 'not-yet');
    const dest = freshFolder('dry-existing');
    await backupMain(['--dest', dest], captureStreams().streams, backupEnv(double));
    const [changed, gone] = assets.filter((a) => a.type === 'upload');
    library.overwrite('image', 'upload', changed?.public_id ?? '', 4321);
    library.delete('image', 'upload', gone?.public_id ?? '');
    library.add({ publicId: 'new/one', resourceType: 'raw', bytes: 1234 });
    const before = await everything(dest);
    const served = servedBytes(double);
    const onFresh = captureStreams();
    const onExisting = captureStreams();

    const freshCode = await backupMain(['--dest', fresh, '--dry-run'], onFresh.streams, backupEnv(double));
    const existingCode = await backupMain(
      ['--dest', dest, '--dry-run', '--delete'],
      onExisting.streams,
      backupEnv(double),
    );

    const total = assets.reduce((sum, a) => sum + a.bytes, 0);
    expect(freshCode).toBe(0);
    expect(onFresh.out()).toContain(
      `Dry run of ${fresh}: ${assets.length} assets at Cloudinary, ${assets.length} would be copied (${formatBytes(
        total - (gone?.bytes ?? 0) - (changed?.bytes ?? 0) + 4321 + 1234,
      )}), 0 unchanged, 0 gone from Cloudinary.`,
    );
    expect(existsSync(fresh), 'the folder was created').toBe(false);
    expect(existingCode).toBe(0);
    expect(onExisting.out()).toContain(
      `Dry run of ${dest}: ${assets.length} assets at Cloudinary, 2 would be copied (${formatBytes(
        4321 + 1234,
      )}), ${assets.length - 2} unchanged, 1 gone from Cloudinary, 1 local copies would be pruned.`,
    );
    expect(servedBytes(double) - served, 'bytes downloaded').toBe(0);
    expect([...(await everything(dest))]).toEqual([...before]);
  });

  it('--no-wait stops at the Admin API limit with exit code 3 and says when to run again; the next run continues without listing a page twice', async () => {
    const double = await startDouble({ counts: { image: { upload: 22, private: 4 } } });
    const resetAt = earlyInTheHour(double);
    double.setRateLimit(3);
    const dest = freshFolder('no-wait');
    const env = backupEnv(double, {
      LISTING_PAGE_SIZE: '5',
      ADMIN_RESERVE: '0',
      RESOURCE_TYPES: 'image',
      DELIVERY_TYPES: 'upload,private',
    });
    const io = captureStreams();

    const code = await backupMain(['--dest', dest, '--no-wait'], io.streams, env);
    const copiedBeforeLimit = (await treeOf(join(dest, 'assets'))).size;
    double.clock.set(resetAt);
    double.setRateLimit(100);
    const later = await runBackup(
      backupOptions(double, dest, {
        settings: fastSettings({
          pageSize: 5,
          adminReserve: 0,
          resourceTypes: ['image'],
          deliveryTypes: ['upload', 'private'],
        }),
      }),
    );

    expect(code).toBe(EXIT_PAUSED);
    expect(io.err()).toBe('');
    expect(io.out()).toContain(
      `Stopped at the Admin API limit (--no-wait). Run the same command again after ${resetAt.toISOString()}: it continues where it stopped.`,
    );
    expect(copiedBeforeLimit, 'the listed pages were copied before stopping').toBe(15);
    expect(later.status).toBe('completed');
    expect(later.failed).toEqual([]);
    expect(await differencesFromLibrary(dest, double.library)).toEqual([]);
    expect(duplicates(listedPages(double))).toEqual([]);
  });

  it('waits out a spent Admin API budget with a countdown on the terminal, then finishes', async () => {
    const double = await startDouble({ counts: { image: { upload: 12, private: 3 } } });
    const resetAt = earlyInTheHour(double);
    double.setRateLimit(2);
    const dest = freshFolder('wait');
    const terminal = captureStreams(true);
    const display = backupDisplay(
      terminal.streams.stdout as NodeJS.WritableStream & { isTTY: boolean; columns: number },
    );
    const waits: Date[] = [];

    const summary = await runBackup(
      backupOptions(double, dest, {
        settings: fastSettings({
          pageSize: 5,
          adminReserve: 0,
          resourceTypes: ['image'],
          deliveryTypes: ['upload', 'private'],
        }),
        onEvent: display.onEvent,
        sleepUntil: async (at) => {
          waits.push(at);
          double.clock.set(at);
        },
      }),
    );
    display.finish(summary);

    expect(waits[0]?.toISOString()).toBe(resetAt.toISOString());
    expect(terminal.out()).toContain(
      `Cloudinary's hourly Admin API budget is spent; waiting until ${resetAt.toISOString()}.`,
    );
    expect(terminal.out()).toContain('\r\u001b[2KAdmin API budget spent: continuing in ');
    expect(summary.status).toBe('completed');
    expect(await differencesFromLibrary(dest, double.library)).toEqual([]);
    expect(duplicates(listedPages(double))).toEqual([]);
  });

  it('stopped during a wait, before the listed pages were copied, the next run still copies them all', async () => {
    const double = await startDouble({ counts: { image: { upload: 15 } } });
    earlyInTheHour(double);
    double.setRateLimit(2);
    double.faults.add({ route: 'delivery', kind: 'latency', ms: 300 });
    const dest = freshFolder('stopped-waiting');
    const settings = fastSettings({
      pageSize: 5,
      adminReserve: 0,
      resourceTypes: ['image'],
      deliveryTypes: ['upload'],
    });

    const stopped = await runBackup(
      backupOptions(double, dest, {
        settings,
        concurrency: 1,
        sleepUntil: async () => {
          throw new Error('Ctrl-C during the countdown');
        },
      }),
    ).catch((error: unknown) => error);
    const copiedBeforeStop = (await treeOf(join(dest, 'assets'))).size;
    double.faults.clear();
    double.setRateLimit(100);
    const next = await runBackup(backupOptions(double, dest, { settings }));

    expect(String(stopped)).toContain('Ctrl-C during the countdown');
    expect(copiedBeforeStop, 'some listed assets were still queued').toBeLessThan(10);
    expect(next.status).toBe('completed');
    expect(await differencesFromLibrary(dest, double.library)).toEqual([]);
  });

  it('downloads at most --concurrency files at once', async () => {
    const double = await startDouble();
    double.faults.add({ route: ['delivery', 'download'], kind: 'latency', ms: 150 });
    const dest = freshFolder('concurrency');
    let most = 0;
    const watch = setInterval(() => {
      const open = double.requestLog.filter(
        (e) => e.status === 0 && (e.kind === 'delivery' || e.kind === 'download'),
      );
      most = Math.max(most, open.length);
    }, 5);

    const code = await backupMain(
      ['--dest', dest, '--concurrency', '2'],
      captureStreams().streams,
      backupEnv(double),
    );
    clearInterval(watch);

    expect(code).toBe(0);
    expect(most).toBe(2);
  });

  it('rejects a --concurrency outside 1..64 as a usage error', async () => {
    const io = captureStreams();

    const code = await backupMain(['--dest', freshFolder('usage'), '--concurrency', '0'], io.streams, {});

    expect(code).toBe(2);
    expect(io.err()).toContain('--concurrency must be a whole number from 1 to 64');
  });

  it('stops with one line naming CLOUDINARY_URL on bad credentials, never printing the secret', async () => {
    const double = await startDouble();
    const wrongSecret = 'wrongSecretXYZ123';
    const url = double.cloudinaryUrl.replace(`:${encodeURIComponent(double.apiSecret)}@`, `:${wrongSecret}@`);
    const bad = captureStreams();
    const unset = captureStreams();

    const badCode = await backupMain(['--dest', freshFolder('creds')], bad.streams, {
      ...backupEnv(double),
      CLOUDINARY_URL: url,
    });
    const unsetCode = await backupMain(['--dest', freshFolder('no-creds')], unset.streams, {
      ...backupEnv(double),
      CLOUDINARY_URL: '',
    });

    expect(url).not.toBe(double.cloudinaryUrl);
    expect(badCode).toBe(1);
    expect(bad.err().trimEnd().split('\n')).toHaveLength(1);
    expect(bad.err()).toContain('CLOUDINARY_URL');
    expect(bad.err()).toContain('rejected the credentials');
    expect(bad.err() + bad.out()).not.toContain(wrongSecret);
    expect(bad.err() + bad.out()).not.toContain(double.apiSecret);
    // A missing setting is a usage error (README: exit code 2).
    expect(unsetCode).toBe(2);
    expect(unset.err()).toContain('CLOUDINARY_URL is not set');
  });

  it('asks for another folder when --dest is a file', async () => {
    const double = await startDouble();
    const file = join(freshFolder('dest-file'), 'a-file');
    await writeFile(file, 'mine');
    const io = captureStreams();

    const code = await backupMain(['--dest', file], io.streams, backupEnv(double));

    expect(code).toBe(1);
    expect(io.err()).toMatch(
      /^backup: cannot write to .*a-file.*; choose a folder you can write to with --dest\.\n$/u,
    );
    expect(await readFile(file, 'utf8')).toBe('mine');
  });

  it('asks for another folder when --dest is read-only', async () => {
    const double = await startDouble();
    const parent = freshFolder('read-only');
    const dest = join(parent, 'locked');
    await mkdir(dest);
    await chmod(parent, 0o755);
    await chmod(dest, 0o555);
    // root may write anywhere: run the command as an unprivileged user then.
    const asUser = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    const child = spawn(process.execPath, ['--import', 'tsx', 'shared/cli/backup.ts', '--dest', dest], {
      cwd: REPO,
      env: { ...backupEnv(double), HOME: parent },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...asUser,
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));

    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));

    expect(code, stderr).toBe(1);
    expect(stderr).toMatch(
      /^backup: cannot write to .*locked.*; choose a folder you can write to with --dest\.\n$/u,
    );
    expect(await readdir(dest)).toEqual([]);
  });

  it('never leaves a corrupt download under its final name, reports it failed and exits 1; the next run copies it', async () => {
    const double = await startDouble();
    const target = double.library
      .all()
      .find((a) => a.type === 'upload' && a.resource_type === 'image') as DoubleAsset;
    const publicId = target.public_id;
    const path = join(freshFolder('corrupt'), 'backup');
    double.faults.add({ route: ['delivery', 'download'], publicId, kind: 'corrupt' });
    const io = captureStreams();

    const code = await backupMain(['--dest', path], io.streams, backupEnv(double));
    const finalPath = join(path, ...keyOf(target).split('/'));
    const leftAfterFailure = existsSync(finalPath);
    const partials = await readdir(join(path, LOCAL_CONTROL_DIR, 'tmp'));
    double.faults.clear();
    const next = await backupMain(['--dest', path], captureStreams().streams, backupEnv(double));

    expect(code).toBe(1);
    expect(io.out()).toContain(', 1 failed.');
    expect(io.out()).toContain(`failed: image/upload/${publicId}:`);
    expect(io.out()).toMatch(/MD5|checksum/iu);
    expect(leftAfterFailure, 'a file under the final name').toBe(false);
    expect(partials).toEqual([]);
    expect(next).toBe(0);
    expect(await differencesFromLibrary(path, double.library)).toEqual([]);
  });

  it('--json prints valid JSON lines ending with a summary', async () => {
    const double = await startDouble();
    const io = captureStreams();

    const code = await backupMain(['--dest', freshFolder('json'), '--json'], io.streams, backupEnv(double));
    const lines = io
      .out()
      .split('\n')
      .filter((line) => line !== '');
    const events = lines.map((line) => JSON.parse(line) as { event: string; [field: string]: unknown });

    expect(code).toBe(0);
    expect(events.at(-1)).toMatchObject({
      event: 'summary',
      status: 'completed',
      listed: double.library.size,
      transferred: double.library.size,
      failed: [],
    });
    expect(events.filter((e) => e.event === 'asset')).toHaveLength(double.library.size);
  });
});

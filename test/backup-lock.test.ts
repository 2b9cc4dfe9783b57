import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupMain } from '../shared/cli/backup.js';
import { runBackup } from '../shared/backup/runBackup.js';
import { generateLibrary, startCloudinaryDouble, type CloudinaryDouble } from './double/index.js';
import {
  backupEnv,
  backupOptions,
  captureStreams,
  differencesFromLibrary,
  freshFolder,
  REPO,
  removeFolders,
  waitUntil,
} from './support/backupBed.js';

/** The state letter of a process in /proc (`Z` for a zombie), or undefined once it is reaped. */
const downloadsStarted = (double: CloudinaryDouble): number =>
  double.counters.deliveryRequests + double.counters.downloadApiRequests;

function processState(pid: number): string | undefined {
  try {
    return /^\d+ \(.*\) (\S)/su.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

/** Threads a process still has; a killed one is a plain zombie once only its leader is left. */
function threadsOf(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/task`).length;
  } catch {
    return 0;
  }
}

describe('one backup at a time in a folder', { timeout: 120_000 }, () => {
  let double: CloudinaryDouble;

  beforeAll(async () => {
    double = await startCloudinaryDouble({
      library: generateLibrary({
        seed: 'lock',
        counts: { image: { upload: 12 }, raw: { upload: 3 } },
        sizes: { image: [2_000, 9_000], raw: [300, 900] },
      }),
    });
  });
  afterAll(async () => {
    await double?.close();
    await removeFolders();
  });

  it('refuses a second backup into a folder while the first one runs, and names it', async () => {
    const dest = freshFolder('lock-busy');
    const stall = double.faults.add({ route: ['delivery', 'download'], kind: 'hang' });
    const before = downloadsStarted(double);
    const first = runBackup(backupOptions(double, dest, { concurrency: 1 }));
    await waitUntil(async () => downloadsStarted(double) > before, 20_000, 'a download');
    const io = captureStreams();

    const code = await backupMain(['--dest', dest], io.streams, backupEnv(double));
    double.faults.remove(stall);
    await first.catch(() => undefined);

    expect(code).toBe(1);
    expect(io.err()).toMatch(
      new RegExp(
        `^backup: another backup into .+ is running \\(process ${process.pid}\\); wait for it to finish, or stop it\\.\\n$`,
        'u',
      ),
    );
  });

  it('starts at once after kill -9 of the previous backup, even while that process is a zombie', async () => {
    const dest = freshFolder('lock-zombie');
    const stall = double.faults.add({ route: ['delivery', 'download'], kind: 'hang' });
    const before = downloadsStarted(double);
    // The backup's parent is `sleep`, which never reaps it: killed, it stays a zombie.
    const parent = spawn(
      'sh',
      [
        '-c',
        `"${process.execPath}" --import tsx shared/cli/backup.ts --dest "${dest}" >/dev/null 2>&1 & echo $!; exec sleep 120`,
      ],
      { cwd: REPO, env: backupEnv(double), stdio: ['ignore', 'pipe', 'ignore'] },
    );
    let pid = 0;
    parent.stdout.on('data', (chunk: Buffer) => (pid ||= Number.parseInt(chunk.toString('utf8'), 10)));
    // Downloads start once the folder is locked.
    await waitUntil(async () => pid > 0 && downloadsStarted(double) > before, 30_000, 'a download');
    process.kill(pid, 'SIGKILL');
    await waitUntil(
      async () => processState(pid) === 'Z' && threadsOf(pid) <= 1,
      10_000,
      'the killed backup to be a zombie',
    );
    double.faults.remove(stall);
    const io = captureStreams();

    const code = await backupMain(['--dest', dest], io.streams, backupEnv(double));
    const stateAfter = processState(pid);
    parent.kill('SIGKILL');

    expect(stateAfter, 'still a zombie during the second run').toBe('Z');
    expect(io.err()).toBe('');
    expect(code).toBe(0);
    expect(await differencesFromLibrary(dest, double.library)).toEqual([]);
  });
});

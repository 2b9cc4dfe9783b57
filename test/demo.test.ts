import { spawn } from 'node:child_process';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { demoLibrary, demoMain } from '../shared/cli/demo.js';
import { formatBytes } from '../shared/progress.js';
import {
  captureStreams,
  countFiles,
  differencesFromLibrary,
  freshFolder,
  REPO,
  removeFolders,
  waitUntil,
} from './support/backupBed.js';

const library = demoLibrary();
const assetCount = library.all().length;
const libraryBytes = library.all().reduce((sum, asset) => sum + asset.bytes, 0);

/** The summary lines a person reads after `npm run demo` into `dest`. */
function expectDemoSummary(output: string, dest: string): void {
  expect(output).toContain(`${assetCount} assets, ${formatBytes(libraryBytes)}`);
  expect(output).toContain('1) First backup');
  expect(output).toContain(
    `Backed up into ${dest}: ${assetCount} assets listed, ${assetCount} copied (${formatBytes(libraryBytes)}), 0 already up to date, 0 failed.`,
  );
  expect(output).toContain('2) Second backup: nothing changed, so nothing is downloaded');
  // The second run lists only what changed since the first (nothing), so it lists nothing.
  expect(output).toContain(
    `Backed up into ${dest}: 0 assets listed, 0 copied (0 B), 0 already up to date, 0 failed.`,
  );
  expect(output).toContain('Second run downloaded 0 B.');
  expect(output).toContain(
    `Verified ${assetCount} of ${assetCount} files (${formatBytes(libraryBytes)}) against the source's MD5s.`,
  );
  expect(output).toContain(`Your files are in ${join(dest, 'assets')}`);
  expect(output).toMatch(/3\) Restore: (\d+) assets deleted at Cloudinary, put back from the backup/u);
  const lost = /3\) Restore: (\d+) assets/u.exec(output)?.[1];
  expect(output).toContain(`: ${lost} of ${lost} assets uploaded and verified`);
  expect(output).toContain(
    `${lost} of ${lost} deleted assets are back at Cloudinary with the backed-up bytes, tags, context and metadata.`,
  );
}

describe('npm run demo', { timeout: 120_000 }, () => {
  afterAll(removeFolders);

  let dest: string;

  it('backs up the sample library twice, downloads nothing the second time, and leaves a verified tree', async () => {
    dest = join(freshFolder('demo'), 'demo-backup');
    const io = captureStreams();

    const code = await demoMain(['--dest', dest], io.streams);

    expect(io.err(), 'nothing on stderr').toBe('');
    expect(code).toBe(0);
    expectDemoSummary(io.out(), dest);
    expect(await differencesFromLibrary(dest, library)).toEqual([]);
  });

  it('runs as a real process with npx tsx, over the folder of an earlier demo, and exits 0', async () => {
    const child = spawn('npx', ['tsx', 'shared/cli/demo.ts', '--dest', dest], {
      cwd: REPO,
      env: process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));

    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));

    expect(code, stderr).toBe(0);
    expect(stderr, 'no warnings but npm’s own').not.toMatch(/ExperimentalWarning|Error/u);
    expectDemoSummary(stdout, dest);
    expect(await differencesFromLibrary(dest, library)).toEqual([]);
  });

  it('runs again after a demo killed half-way through its first backup', async () => {
    const dest = join(freshFolder('demo-killed'), 'demo-backup');
    const child = spawn(process.execPath, ['--import', 'tsx', 'shared/cli/demo.ts', '--dest', dest], {
      cwd: REPO,
      stdio: 'ignore',
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.once('exit', (_code, signal) => resolve(signal)),
    );
    await waitUntil(async () => (await countFiles(join(dest, 'assets'))) > 0, 30_000, 'a first file');
    child.kill('SIGKILL');
    const signal = await exited;
    const io = captureStreams();

    const code = await demoMain(['--dest', dest], io.streams);

    expect(signal).toBe('SIGKILL');
    expect(io.err()).toBe('');
    expect(code).toBe(0);
    expect(await differencesFromLibrary(dest, library)).toEqual([]);
  });

  it('refuses a folder it did not make, leaving it untouched', async () => {
    const foreign = freshFolder('not-a-demo');
    await writeFile(join(foreign, 'thesis.pdf'), 'mine');
    const io = captureStreams();

    const code = await demoMain(['--dest', foreign], io.streams);

    expect(code).toBe(1);
    expect(io.err()).toMatch(
      /^demo: .+ exists and was not made by the demo; remove it or pass --dest with another folder\.\n$/u,
    );
    expect(await readdir(foreign)).toEqual(['thesis.pdf']);
  });
});

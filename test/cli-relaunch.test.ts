import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKUP_NODE_FLAGS } from '../shared/backup/nodeFlags.js';
import { missingNodeFlags, RELAUNCHED_ENV, shouldRelaunch } from '../shared/cli/relaunch.js';

const REPO = new URL('..', import.meta.url).pathname;

describe('the heap settings of an installed backup command', () => {
  it('adds only the settings Node was started without, keeping a heap size the user chose', () => {
    expect(missingNodeFlags(BACKUP_NODE_FLAGS, [], '')).toEqual(BACKUP_NODE_FLAGS);
    expect(missingNodeFlags(BACKUP_NODE_FLAGS, [...BACKUP_NODE_FLAGS], '')).toEqual([]);
    expect(missingNodeFlags(BACKUP_NODE_FLAGS, [], '--max-old-space-size=4096')).toEqual([
      '--max-semi-space-size=16',
    ]);
    expect(
      missingNodeFlags(BACKUP_NODE_FLAGS, ['--max_semi_space_size=8'], '--max-old-space-size=512'),
    ).toEqual([]);
  });

  it('starts a command again at most once', () => {
    expect(shouldRelaunch(['--max-old-space-size=128'], {})).toBe(true);
    expect(shouldRelaunch([], {})).toBe(false);
    expect(shouldRelaunch(['--max-old-space-size=128'], { [RELAUNCHED_ENV]: '1' })).toBe(false);
  });
});

describe('a command started again with heap settings', () => {
  let dir: string;
  let launcher: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'relaunch-'));
    launcher = join(dir, 'launcher.mts');
    // What bin.ts does for `backup`, with a probe script in place of the command.
    await writeFile(
      launcher,
      `import { relaunchWith } from ${JSON.stringify(join(REPO, 'shared/cli/relaunch.js'))};
const [probe, ...args] = process.argv.slice(2);
process.exitCode = await relaunchWith(['--max-semi-space-size=16', '--max-old-space-size=128'], probe, args);
`,
    );
    await writeFile(
      join(dir, 'report.mjs'),
      `import { getHeapStatistics } from 'node:v8';
console.log(JSON.stringify({ execArgv: process.execArgv, args: process.argv.slice(2),
  relaunched: process.env.${RELAUNCHED_ENV}, heapLimitMb: Math.round(getHeapStatistics().heap_size_limit / 2 ** 20) }));
process.exit(7);
`,
    );
    await writeFile(
      join(dir, 'stop.mjs'),
      `const handled = process.argv[2] === 'handled';
if (handled) process.on('SIGTERM', () => { console.log('stopped cleanly'); process.exit(0); });
setInterval(() => undefined, 1000);
console.log('ready');
`,
    );
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function launch(...args: string[]) {
    const child = spawn(process.execPath, ['--import', 'tsx', launcher, ...args], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    const printed = (text: string) =>
      new Promise<void>((resolve) => {
        const look = () => {
          if (stdout.includes(text)) {
            child.stdout.off('data', look);
            resolve();
          }
        };
        child.stdout.on('data', look);
        look();
      });
    return { child, exited, printed, output: () => ({ stdout, stderr }) };
  }

  it('runs the same script and arguments with the settings, and exits with its code', async () => {
    const run = launch(join(dir, 'report.mjs'), 'backup', '--dest', 'a b');

    const code = await run.exited;
    const report = JSON.parse(run.output().stdout) as {
      execArgv: string[];
      args: string[];
      relaunched: string;
      heapLimitMb: number;
    };

    expect(code, run.output().stderr).toBe(7);
    expect(report.execArgv).toEqual(
      expect.arrayContaining(['--max-semi-space-size=16', '--max-old-space-size=128']),
    );
    expect(report.args).toEqual(['backup', '--dest', 'a b']);
    expect(report.relaunched).toBe('1');
    // The old-space cap is in force: the heap limit is far below V8's default on this machine.
    expect(report.heapLimitMb).toBeLessThan(400);
  });

  it('passes a stop signal on, so the command stops the way it would if started directly', async () => {
    const run = launch(join(dir, 'stop.mjs'), 'handled');
    await run.printed('ready');

    run.child.kill('SIGTERM');

    expect(await run.exited).toBe(0);
    expect(run.output().stdout).toContain('stopped cleanly');
  });

  it('reports a command ended by a signal as a shell does (128 + its number)', async () => {
    const run = launch(join(dir, 'stop.mjs'), 'unhandled');
    await run.printed('ready');

    run.child.kill('SIGTERM');

    expect(await run.exited).toBe(143);
  });
});

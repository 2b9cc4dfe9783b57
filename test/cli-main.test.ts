import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { cliMain, SUBCOMMANDS } from '../shared/cli/main.js';
import { captureStreams, REPO } from './support/backupBed.js';

const NAMES = ['backup', 'pull', 'replicate', 'run-now', 'restore', 'webhook', 'demo'];

describe('cloudinary-backup, the one command', () => {
  it('lists every subcommand and the exit codes in --help', async () => {
    const io = captureStreams();

    const code = await cliMain(['--help'], io.streams, {});

    expect(code).toBe(0);
    expect(io.out()).toMatch(/^Usage: cloudinary-backup <command> \[options\]\n/u);
    for (const name of NAMES) expect(io.out()).toMatch(new RegExp(`^ {2}${name} +\\S`, 'mu'));
    expect(io.out()).toContain('Exit codes: 0 done, 1 something failed');
    expect(Object.keys(SUBCOMMANDS)).toEqual(NAMES);
  });

  it("prints package.json's version with --version", async () => {
    const { version } = JSON.parse(await readFile(`${REPO}/package.json`, 'utf8')) as { version: string };
    const io = captureStreams();

    expect(await cliMain(['--version'], io.streams, {})).toBe(0);
    expect(io.out()).toBe(`${version}\n`);
  });

  it("shows a subcommand's help under the command's own name", async () => {
    const io = captureStreams();

    const code = await cliMain(['pull', '--dest', 'x', '--help'], io.streams, {});

    expect(code).toBe(0);
    expect(io.out()).toMatch(/^Usage: cloudinary-backup pull --dest DIR \[options\]\n/u);
    expect(io.out()).toContain('  cloudinary-backup pull --dest /mnt/backup --restore-archived=Standard');
    expect(io.out()).not.toContain('npm run');
  });

  it('keeps the npm run wording in help when run through the npm script', async () => {
    const io = captureStreams();

    await cliMain(['demo', '--help'], io.streams, { npm_lifecycle_event: 'demo' });

    expect(io.out()).toMatch(/^Usage: npm run demo \[-- --dest DIR\]\n/u);
  });

  it('hands the rest of the line to the subcommand, whose usage errors exit 2', async () => {
    const io = captureStreams();

    const code = await cliMain(['backup', '--dset', 'x'], io.streams, {});

    expect(code).toBe(2);
    expect(io.err()).toMatch(/^backup: unknown option --dset\. Did you mean --dest\?/u);
  });

  it('exits 2 on an unknown command, naming the real ones, and on no command at all', async () => {
    const unknown = captureStreams();
    const none = captureStreams();

    expect(await cliMain(['restore-all'], unknown.streams, {})).toBe(2);
    expect(await cliMain([], none.streams, {})).toBe(2);

    expect(unknown.err()).toBe(
      'cloudinary-backup: unknown command "restore-all"; the commands are backup, pull, replicate, run-now, restore, webhook, demo\n' +
        'Run with --help for usage.\n',
    );
    expect(none.err()).toMatch(/^Usage: cloudinary-backup <command>/u);
  });
});

import { spawn } from 'node:child_process';
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoLibrary } from '../../shared/cli/demo.js';
import { REPO } from '../support/backupBed.js';
import { cleanEnv } from '../support/cliChild.js';

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment of someone in an empty folder: this project's Node 24 first, no npm script context. */
function userEnv(): NodeJS.ProcessEnv {
  const env = cleanEnv();
  for (const name of Object.keys(env)) if (/^npm_(?!config_)/u.test(name)) delete env[name];
  return { ...env, PATH: `${dirname(process.execPath)}${delimiter}${env.PATH ?? ''}` };
}

function run(command: string, args: string[], cwd: string): Promise<Finished> {
  const child = spawn(command, args, { cwd, env: userEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const SUBCOMMANDS = ['backup', 'pull', 'replicate', 'run-now', 'restore', 'webhook', 'demo'];
/** Packages only development needs: none may be installed, and the command must not miss them. */
const DEV_ONLY = ['tsx', 'esbuild', 'typescript', 'vitest', 'aws-cdk-lib', 'aws-cdk', 'node'];

describe('the packed command, installed in an empty folder with production dependencies only', () => {
  let work: string;
  let app: string;
  let packed: string[];
  // `--no`: a missing bin must fail here, never fetch a package of that name from the registry.
  const cli = (...args: string[]) => run('npx', ['--no', '--', 'cloudinary-backup', ...args], app);

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'cli-package-'));
    app = join(work, 'app');
    await mkdir(app);
    const pack = await run('npm', ['pack', '--json', '--pack-destination', work], REPO);
    if (pack.code !== 0) throw new Error(`npm pack failed: ${pack.stderr}`);
    const [tarball] = JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[];
    if (!tarball) throw new Error(`npm pack printed no tarball: ${pack.stdout}`);
    packed = tarball.files.map((file) => file.path).sort();
    await writeFile(join(app, 'package.json'), '{ "name": "empty", "private": true }\n');
    const install = await run(
      'npm',
      ['install', '--omit=dev', '--no-audit', '--no-fund', join(work, tarball.filename)],
      app,
    );
    if (install.code !== 0) throw new Error(`npm install of the tarball failed: ${install.stderr}`);
  });
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('holds the built command and no sources or tests, and installs no development package', async () => {
    expect(packed).toEqual(['README.md', 'dist/cli.js', 'package.json']);
    const missing = await Promise.all(
      DEV_ONLY.map((name) =>
        access(join(app, 'node_modules', name)).then(
          () => name,
          () => undefined,
        ),
      ),
    );
    expect(missing.filter(Boolean)).toEqual([]);
  });

  it('answers --help with every subcommand and --version with the package version', async () => {
    const { version } = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string };

    const help = await cli('--help');
    const shown = await cli('--version');

    expect(help.code, help.stderr).toBe(0);
    for (const name of SUBCOMMANDS) expect(help.stdout).toMatch(new RegExp(`^ {2}${name} +\\S`, 'mu'));
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toBe(`${version}\n`);
  });

  it.each(SUBCOMMANDS)('answers %s --help with its options', async (name) => {
    const help = await cli(name, '--help');

    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toMatch(new RegExp(`^Usage: cloudinary-backup ${name}\\b`, 'u'));
    expect(help.stdout).toContain('--help');
  });

  it('runs one command, not every bundled one, when started as node dist/cli.js', async () => {
    const script = join(app, 'node_modules', 'cloudinary-s3-replicator', 'dist', 'cli.js');

    const help = await run(process.execPath, [script, 'backup', '--help'], app);

    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout.match(/^Usage:/gmu)).toEqual(['Usage:']);
    expect(help.stderr).toBe('');
  });

  it('exits 2 with advice on a usage error', async () => {
    const wrong = await cli('backup', '--dset', 'x');

    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('backup: unknown option --dset. Did you mean --dest?');
    expect(wrong.stderr).toContain('Run with --help for usage.');
  });

  it('runs the demo: backs up the sample library twice and verifies every file', async () => {
    const assets = demoLibrary().all().length;
    const dest = join(work, 'demo-backup');

    const demo = await cli('demo', '--dest', dest);

    expect(demo.code, demo.stderr).toBe(0);
    expect(demo.stdout).toContain('Second run downloaded 0 B.');
    expect(demo.stdout).toContain(`Verified ${assets} of ${assets} files`);
    expect(demo.stdout).toContain('npx cloudinary-backup backup --dest DIR');
    await expect(access(join(dest, 'manifests'))).resolves.toBeUndefined();
  });
});

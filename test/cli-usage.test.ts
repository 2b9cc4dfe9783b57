import { afterAll, describe, expect, it } from 'vitest';
import { freshFolder, removeFolders } from './support/backupBed.js';
import { cleanEnv, runCommand } from './support/cliChild.js';

/** The README: exit code 2 is a usage error, with a line saying what to fix. */
describe('a command started without what it needs exits 2 with advice', { timeout: 120_000 }, () => {
  afterAll(removeFolders);

  it('npm run backup without CLOUDINARY_URL', async () => {
    const run = await runCommand('shared/cli/backup.ts', ['--dest', freshFolder('no-url')], cleanEnv());

    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(/^backup: CLOUDINARY_URL is not set\. Set CLOUDINARY_URL to cloudinary:\/\//u);
    expect(run.stderr).toContain('Run with --help for usage.');
  });

  it('npm run backup with a malformed CLOUDINARY_URL, without echoing its secret', async () => {
    const run = await runCommand(
      'shared/cli/backup.ts',
      ['--dest', freshFolder('bad-url')],
      cleanEnv({ CLOUDINARY_URL: 'https://key:hunter2@cloud' }),
    );

    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(/CLOUDINARY_URL must start with cloudinary:\/\//u);
    expect(run.stderr).not.toContain('hunter2');
  });

  it('npm run pull without a bucket or a stack', async () => {
    const run = await runCommand('shared/cli/pull.ts', ['--dest', freshFolder('no-bucket')], cleanEnv());

    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(/^pull: no bucket given: pass --bucket NAME/u);
  });

  it('npm run replicate without CLOUDINARY_URL or a stack', async () => {
    const run = await runCommand(
      'shared/cli/replicate.ts',
      [],
      cleanEnv({ QUEUE_URL: 'http://127.0.0.1:9/queue' }),
    );

    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(/^replicate: CLOUDINARY_URL is not set\./u);
  });
});

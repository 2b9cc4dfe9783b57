import { describe, expect, it } from 'vitest';
import { cleanEnv, runCommand } from './support/cliChild.js';

/** Long enough for a loaded machine to start the command; a spinning mkdir never ends at all. */
const GIVE_UP_MS = 60_000;

describe('a destination inside a system folder is refused at once', { timeout: 120_000 }, () => {
  it('npm run backup -- --dest /proc/... says why and exits 1, instead of spinning forever', async () => {
    const run = await runCommand(
      'shared/cli/backup.ts',
      ['--dest', '/proc/cloudinary-backup/photos'],
      cleanEnv({ CLOUDINARY_URL: 'cloudinary://key:secret@cloud?upload_prefix=http://127.0.0.1:9' }),
      { giveUpMs: GIVE_UP_MS },
    );

    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).toBe(
      'backup: --dest /proc/cloudinary-backup/photos is inside /proc, which the system keeps for itself and ' +
        'which holds no files; choose a folder on a disk.\n',
    );
  });

  it('npm run pull -- --dest /sys/kernel says why and exits 1', async () => {
    const run = await runCommand(
      'shared/cli/pull.ts',
      ['--dest', '/sys/kernel', '--bucket', 'backup'],
      cleanEnv({ AWS_ENDPOINT_URL: 'http://127.0.0.1:9', AWS_REGION: 'us-east-1' }),
      { giveUpMs: GIVE_UP_MS },
    );

    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).toMatch(
      /^pull: --dest \/sys\/kernel is inside \/sys, .*choose a folder on a disk\.\n$/u,
    );
  });
});

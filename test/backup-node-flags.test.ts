import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { BACKUP_NODE_FLAGS } from '../shared/backup/nodeFlags.js';

const REPO = new URL('..', import.meta.url).pathname;

describe('npm run backup and its memory settings', () => {
  it('starts Node with the heap settings the bench measures its memory under, and Node accepts them', async () => {
    const { scripts } = JSON.parse(await readFile(`${REPO}/package.json`, 'utf8')) as {
      scripts: Record<string, string>;
    };
    const words = (scripts.backup ?? '').split(/\s+/u);
    for (const flag of BACKUP_NODE_FLAGS) expect(words).toContain(flag);
    // Flags Node did not know would stop `npm run backup` before it starts.
    const { stdout } = await promisify(execFile)(process.execPath, [...BACKUP_NODE_FLAGS, '-p', '"ok"']);
    expect(stdout.trim()).toBe('ok');
  });
});

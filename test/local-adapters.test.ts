import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { LOCAL_CONTROL_DIR } from '../shared/constants.js';
import { LocalObjectStore } from '../shared/local/LocalObjectStore.js';
import { openDatabase } from '../shared/local/sqlite.js';
import { emptyCounters } from '../shared/engine/enumerate.js';
import { SqliteStateStore } from '../shared/local/SqliteStateStore.js';
import type { AssetState, RunRecord } from '../shared/types.js';

const REPO = join(import.meta.dirname, '..');
const md5 = (data: Buffer | string): string => createHash('md5').update(data).digest('hex');
const dirs: string[] = [];

function freshFolder(label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `local-${label}-`));
  dirs.push(dir);
  return dir;
}

afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** Sends `good` bytes, then fails like a dropped connection. */
function brokenBody(good: number): Readable {
  let sent = false;
  return new Readable({
    read() {
      if (!sent) {
        sent = true;
        this.push(Buffer.alloc(good, 7));
      } else {
        this.destroy(new Error('connection reset'));
      }
    },
  });
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Every path (files, folders, links) under `dir`, relative. */
async function everythingUnder(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).map(String).sort();
}

/** Sends `good` bytes, then fails like a dropped connection once they are in the partial file. */
function bodyCutOnceWritten(dir: string, good: number): Readable {
  let sent = false;
  const partial = join(dir, LOCAL_CONTROL_DIR, 'tmp');
  const written = async (): Promise<boolean> => {
    for (const name of await readdir(partial)) {
      if ((await stat(join(partial, name))).size >= good) return true;
    }
    return false;
  };
  return new Readable({
    read() {
      if (!sent) {
        sent = true;
        this.push(Buffer.alloc(good, 7));
        return;
      }
      const cut = async () => {
        while (!(await written())) await new Promise((resolve) => setImmediate(resolve));
        this.destroy(new Error('connection reset'));
      };
      void cut();
    },
  });
}

describe('LocalObjectStore', () => {
  it('keeps an object at DIR/<key>, the same layout as a pulled bucket', async () => {
    const dir = freshFolder('layout');
    const store = new LocalObjectStore(dir);

    await store.put('assets/image/upload/sea.jpg', Readable.from([Buffer.from('waves')]), { metadata: {} });

    expect(await readFile(join(dir, 'assets/image/upload/sea.jpg'), 'utf8')).toBe('waves');
    store.close();
  });

  it('a failed put leaves no file under the final name and no temp file', async () => {
    const dir = freshFolder('failed');
    const store = new LocalObjectStore(dir);

    await expect(
      store.put('assets/video/upload/clip.mp4', brokenBody(200_000), { metadata: {} }),
    ).rejects.toThrow('connection reset');

    await expect(stat(join(dir, 'assets/video/upload/clip.mp4'))).rejects.toThrow();
    expect(await readdir(join(dir, LOCAL_CONTROL_DIR, 'tmp'))).toEqual([]);
    store.close();
  });

  it('an aborted put removes its temp file', async () => {
    const dir = freshFolder('aborted');
    const store = new LocalObjectStore(dir);
    const abort = new AbortController();
    const endless = new Readable({
      read() {
        setTimeout(() => this.push(Buffer.alloc(1024)), 2);
      },
    });

    const put = store.put('assets/video/upload/long.mp4', endless, { metadata: {}, signal: abort.signal });
    setTimeout(() => abort.abort(), 30);

    await expect(put).rejects.toThrow();
    expect(await readdir(join(dir, LOCAL_CONTROL_DIR, 'tmp'))).toEqual([]);
    await expect(stat(join(dir, 'assets/video/upload/long.mp4'))).rejects.toThrow();
    store.close();
  });

  it('an interrupted copy keeps its bytes and continues where it stopped, its MD5 covering every byte once', async () => {
    const dir = freshFolder('resume');
    const store = new LocalObjectStore(dir);
    const data = Buffer.concat([Buffer.alloc(300_000, 7), Buffer.alloc(200_000, 9)]);
    const expected = { bytes: data.length, md5: md5(data) };
    await expect(
      store.put('assets/video/upload/clip.mp4', bodyCutOnceWritten(dir, 300_000), {
        metadata: {},
        expected,
        resumable: { version: 2 },
      }),
    ).rejects.toThrow('connection reset');

    const from = await store.resume('assets/video/upload/clip.mp4', 2);
    const put = await store.put('assets/video/upload/clip.mp4', Readable.from([data.subarray(from?.bytes)]), {
      metadata: {},
      expected,
      resumable: { version: 2, from },
    });
    store.close();

    expect(from?.bytes).toBe(300_000);
    expect(put).toMatchObject({ bytes: data.length, md5: md5(data) });
    expect(await readFile(join(dir, 'assets/video/upload/clip.mp4'))).toEqual(data);
    expect(await readdir(join(dir, LOCAL_CONTROL_DIR, 'tmp'))).toEqual([]);
  });

  it('starts over when the asset has a new version: the old partial file is discarded', async () => {
    const dir = freshFolder('resume-version');
    const store = new LocalObjectStore(dir);
    await expect(
      store.put('assets/video/upload/clip.mp4', bodyCutOnceWritten(dir, 300_000), {
        metadata: {},
        resumable: { version: 2 },
      }),
    ).rejects.toThrow('connection reset');

    const from = await store.resume('assets/video/upload/clip.mp4', 3);
    const left = await readdir(join(dir, LOCAL_CONTROL_DIR, 'tmp'));
    store.close();

    expect(from).toBeUndefined();
    expect(left).toEqual([]);
  });

  it('a resumed copy whose bytes do not verify is discarded, so the next attempt starts over', async () => {
    const dir = freshFolder('resume-mismatch');
    const store = new LocalObjectStore(dir);
    const key = 'assets/video/upload/clip.mp4';
    await expect(
      store.put(key, bodyCutOnceWritten(dir, 300_000), { metadata: {}, resumable: { version: 2 } }),
    ).rejects.toThrow('connection reset');
    const from = await store.resume(key, 2);

    await expect(
      store.put(key, Readable.from([Buffer.alloc(100, 1)]), {
        metadata: {},
        expected: { bytes: 300_100, md5: md5('other bytes') },
        resumable: { version: 2, from },
      }),
    ).rejects.toThrow('does not match');
    const after = await store.resume(key, 2);
    store.close();

    expect(after).toBeUndefined();
  });

  it('sets the file time to the asset creation time', async () => {
    const dir = freshFolder('mtime');
    const store = new LocalObjectStore(dir);

    await store.put('assets/image/upload/old.jpg', Readable.from([Buffer.from('x')]), {
      metadata: {},
      createdAt: '2015-03-04T05:06:07Z',
    });

    expect((await stat(join(dir, 'assets/image/upload/old.jpg'))).mtime.toISOString()).toBe(
      '2015-03-04T05:06:07.000Z',
    );
    store.close();
  });

  it('keeps MD5 and metadata in its index, not in files beside the assets', async () => {
    const dir = freshFolder('index');
    const store = new LocalObjectStore(dir);

    await store.put('assets/raw/upload/a.txt', Readable.from([Buffer.from('abc')]), {
      metadata: { note: 'n' },
    });
    const head = await store.head('assets/raw/upload/a.txt');

    expect(head).toMatchObject({ bytes: 3, md5: md5('abc'), metadata: { note: 'n' } });
    expect(await everythingUnder(join(dir, 'assets'))).toEqual(['raw', 'raw/upload', 'raw/upload/a.txt']);
    store.close();
  });

  it('stops vouching for the MD5 of a file someone changed behind its back', async () => {
    const dir = freshFolder('tampered');
    const store = new LocalObjectStore(dir);
    await store.put('assets/raw/upload/a.txt', Readable.from([Buffer.from('abc')]), {
      metadata: { note: 'n' },
    });

    await writeFile(join(dir, 'assets/raw/upload/a.txt'), 'abcd');
    const head = await store.head('assets/raw/upload/a.txt');

    expect(head).toMatchObject({ bytes: 4, md5: undefined });
    store.close();
  });

  it('keeps two keys that differ only in case apart, even on a case-insensitive disk', async () => {
    const dir = freshFolder('case');
    const store = new LocalObjectStore(dir);

    await store.put('assets/image/upload/Logo.png', Readable.from([Buffer.from('upper')]), { metadata: {} });
    await store.put('assets/image/upload/logo.png', Readable.from([Buffer.from('lower')]), { metadata: {} });

    expect((await readAll(await store.get('assets/image/upload/Logo.png'))).toString()).toBe('upper');
    expect((await readAll(await store.get('assets/image/upload/logo.png'))).toString()).toBe('lower');
    store.close();
  });

  it('refuses to write through a symlink planted in the folder', async () => {
    const outside = freshFolder('outside');
    const dir = freshFolder('symlinked');
    await symlink(outside, join(dir, 'assets'));
    const store = new LocalObjectStore(dir);

    await expect(
      store.put('assets/image/upload/x.jpg', Readable.from([Buffer.from('x')]), { metadata: {} }),
    ).rejects.toThrow('symbolic link');

    expect(await readdir(outside)).toEqual([]);
    store.close();
  });

  it('never writes outside its folder, whatever the key (property)', async () => {
    const parent = freshFolder('property');
    const dir = join(parent, 'dest');
    await mkdir(dir);
    const store = new LocalObjectStore(dir);
    const segment = fc.oneof(
      fc.constantFrom(
        '..',
        '.',
        '',
        'a',
        'A',
        '\\',
        '\u0000',
        'CON',
        'nul.txt',
        ' ',
        'x.',
        LOCAL_CONTROL_DIR,
        '_unsafe',
      ),
      fc.constant('y'.repeat(300)),
      fc.string({ unit: 'binary', maxLength: 12 }),
    );
    const key = fc.oneof(
      fc.array(segment, { minLength: 1, maxLength: 6 }).map((parts) => parts.join('/')),
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.constantFrom('/abs', '../x', 'a/../../b', 'a\\b', 'a\u0000b', 'C:\\Windows\\x'),
    );

    await fc.assert(
      fc.asyncProperty(key, async (k) => {
        const body = `body of ${JSON.stringify(k)}`;
        await store.put(k, Readable.from([Buffer.from(body)]), { metadata: {} });

        expect((await readAll(await store.get(k))).toString()).toBe(body);
        expect(await readdir(parent)).toEqual(['dest']);
        for (const path of await everythingUnder(dir)) {
          expect(relative(dir, resolve(dir, path)).startsWith('..')).toBe(false);
        }
      }),
      { numRuns: 150 },
    );
    const listed: string[] = [];
    for await (const object of store.list('')) listed.push(object.key);
    expect(listed.length).toBeGreaterThan(0);
    store.close();
  });
});

/** A child process that records assets and counts them into a run as fast as it can, printing each commit. */
const WRITER = `
import { SqliteStateStore } from ${JSON.stringify(join(REPO, 'shared/local/SqliteStateStore.js'))};
const [dir, round] = process.argv.slice(2);
const store = new SqliteStateStore(dir);
const runId = 'run-kill';
if (!(await store.getRun(runId))) {
  const at = new Date().toISOString();
  await store.putRun({ runId, phase: 'listing', listings: {}, startedAt: at, updatedAt: at,
    counters: { listed: 0, enqueued: 0, skipped: 0, replicated: 0, failed: 0, deleted: 0, bytes: 0, adminCalls: 0 } });
}
for (let i = 0; ; i++) {
  const publicId = 'round-' + round + '/asset-' + i;
  await store.recordReplicated({ id: 'image/upload/' + publicId, resourceType: 'image', deliveryType: 'upload',
    publicId, version: 1, bytes: i, md5: 'x'.repeat(32), objectKey: 'assets/image/upload/' + publicId,
    status: 'replicated', attempts: 0, lastError: 'padding '.repeat(50) });
  await store.addToRunCounters(runId, { replicated: 1, bytes: i });
  process.stdout.write(i + '\\n');
}
`;

async function writeUntilKilled(
  dir: string,
  script: string,
  round: number,
  commits: number,
): Promise<number> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, dir, String(round)], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let acknowledged = -1;
  let buffer = '';
  const exited = new Promise<NodeJS.Signals | null>((done) =>
    child.once('exit', (_code, signal) => done(signal)),
  );
  await new Promise<void>((reached, failed) => {
    child.once('exit', (code) => failed(new Error(`the writer exited by itself (code ${code})`)));
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      const lines = buffer.split('\n');
      buffer = lines.pop() ?? '';
      for (const line of lines) acknowledged = Number(line);
      if (acknowledged + 1 >= commits) {
        child.kill('SIGKILL');
        reached();
      }
    });
  });
  expect(await exited).toBe('SIGKILL');
  return acknowledged + 1;
}

/** A run still listing, with every counter at zero. */
function listingRun(runId: string, at: string): RunRecord {
  return { runId, phase: 'listing', listings: {}, startedAt: at, updatedAt: at, counters: emptyCounters() };
}

describe('SqliteStateStore', () => {
  it('survives kill -9 in the middle of writes: intact file, every acknowledged commit kept', async () => {
    const dir = freshFolder('kill');
    const script = join(dir, 'writer.mts');
    await writeFile(script, WRITER);

    const firstRound = await writeUntilKilled(dir, script, 1, 150);
    const secondRound = await writeUntilKilled(dir, script, 2, 150);
    const db = openDatabase(join(dir, LOCAL_CONTROL_DIR, 'state.sqlite'));
    const integrity = db.prepare('PRAGMA integrity_check').get() as Record<string, string>;
    db.close();
    const store = new SqliteStateStore(dir);
    const assets: AssetState[] = [];
    for await (const asset of store.listAssets()) assets.push(asset);
    const run = await store.getRun('run-kill');
    store.close();

    expect(Object.values(integrity)).toEqual(['ok']);
    expect(assets.filter((a) => a.publicId.startsWith('round-1/')).length).toBeGreaterThanOrEqual(firstRound);
    expect(assets.filter((a) => a.publicId.startsWith('round-2/')).length).toBeGreaterThanOrEqual(
      secondRound,
    );
    // The counter commit follows the asset commit, so at most one per round can be missing.
    expect(run?.counters.replicated).toBeGreaterThanOrEqual(firstRound + secondRound);
    expect(run?.counters.replicated).toBeLessThanOrEqual(assets.length);
  });

  it('lets exactly one of two connections to the same file take a lease', async () => {
    const dir = freshFolder('two');
    const a = new SqliteStateStore(dir);
    const b = new SqliteStateStore(dir);
    const ref = { resourceType: 'image' as const, deliveryType: 'upload', publicId: 'shared' };

    const results = await Promise.all([
      a.acquireLease(ref, 1, 'a', 60_000),
      b.acquireLease(ref, 1, 'b', 60_000),
    ]);

    expect(results.sort()).toEqual(['acquired', 'busy']);
    a.close();
    b.close();
  });

  it('adds up the counter bumps of many copies finished together and writes the run once', async () => {
    const store = new SqliteStateStore(freshFolder('counters'));
    const at = new Date().toISOString();
    await store.putRun(listingRun('run-bumps', at));
    const before = store.commitStats.writes;

    await Promise.all(
      Array.from({ length: 40 }, (_, i) => store.addToRunCounters('run-bumps', { replicated: 1, bytes: i })),
    );
    await store.addToRunCounters('run-bumps', { failed: 2 });
    const run = await store.getRun('run-bumps');
    store.close();

    expect(run?.counters).toMatchObject({ replicated: 40, bytes: (39 * 40) / 2, failed: 2 });
    // The optimistic lock of checkpoints is untouched by counter bumps.
    expect(run?.updatedAt).toBe(at);
    expect(store.commitStats.writes - before).toBe(2);
  });

  it('fails every bump of a run that does not exist, and then takes new bumps again', async () => {
    const store = new SqliteStateStore(freshFolder('counters-missing'));
    const outcomes = await Promise.allSettled([
      store.addToRunCounters('no-such-run', { replicated: 1 }),
      store.addToRunCounters('no-such-run', { replicated: 1 }),
    ]);
    const at = new Date().toISOString();
    await store.putRun(listingRun('no-such-run', at));
    await store.addToRunCounters('no-such-run', { replicated: 3 });
    const run = await store.getRun('no-such-run');
    store.close();

    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected']);
    expect(run?.counters.replicated).toBe(3);
  });

  it('writes nothing for a lease of no length (a backup holds its folder lock): a copy is never kept waiting, a copied version is done', async () => {
    const dir = freshFolder('zero-lease');
    const store = new SqliteStateStore(dir);
    const other = new SqliteStateStore(dir);
    const ref = { resourceType: 'image' as const, deliveryType: 'upload', publicId: 'p' };
    const before = store.commitStats.writes;

    const first = await store.acquireLease(ref, 1, 'killed-backup', 0);
    const second = await other.acquireLease(ref, 1, 'this-backup', 0);
    await store.recordReplicated({
      id: 'image/upload/p',
      resourceType: 'image',
      deliveryType: 'upload',
      publicId: 'p',
      version: 1,
      bytes: 3,
      md5: 'x'.repeat(32),
      objectKey: 'assets/image/upload/p',
      status: 'replicated',
      attempts: 0,
    });
    const again = await other.acquireLease(ref, 1, 'next-run', 0);
    const writesForLeases = store.commitStats.writes - before - 1;
    store.close();
    other.close();

    expect([first, second, again]).toEqual(['acquired', 'acquired', 'done']);
    expect(writesForLeases).toBe(0);
    expect(other.commitStats.writes).toBe(0);
  });
});

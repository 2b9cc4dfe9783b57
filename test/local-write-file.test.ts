import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { IntegrityError } from '../shared/errors.js';
import { Verifier } from '../shared/hashing.js';
import { writeVerifiedFile } from '../shared/local/writeVerifiedFile.js';

const folders: string[] = [];
afterAll(async () => {
  await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
});

async function freshFile(name: string): Promise<string> {
  const folder = await mkdtemp(join(tmpdir(), 'write-file-'));
  folders.push(folder);
  return join(folder, name);
}

/** A body that hands over `chunks` one per turn of the event loop, then ends or fails. */
function bodyOf(chunks: Buffer[], failWith?: Error): Readable {
  let next = 0;
  return new Readable({
    read() {
      setImmediate(() => {
        if (next < chunks.length) this.push(chunks[next++]);
        else if (failWith) this.destroy(failWith);
        else this.push(null);
      });
    },
  });
}

const md5 = (data: Buffer) => createHash('md5').update(data).digest('hex');

describe('writing a downloaded file', () => {
  it('writes a small file whole, verified, with its time, and returns the stat of what is on disk', async () => {
    const path = await freshFile('small');
    const chunks = [Buffer.alloc(20_000, 1), Buffer.alloc(30_000, 2), Buffer.alloc(7, 3)];
    const whole = Buffer.concat(chunks);
    const mtime = new Date('2021-05-04T03:02:01.000Z');

    const written = await writeVerifiedFile(
      bodyOf(chunks),
      path,
      'wx',
      new Verifier({ bytes: whole.length, md5: md5(whole) }),
      { mtime },
    );
    const onDisk = await stat(path, { bigint: true });

    expect(await readFile(path)).toEqual(whole);
    expect(written.size).toBe(BigInt(whole.length));
    expect(written.ino).toBe(onDisk.ino);
    expect(onDisk.mtime.toISOString()).toBe(mtime.toISOString());
  });

  it('writes a large file in pieces, every byte in order', async () => {
    const path = await freshFile('large');
    const chunks = Array.from({ length: 40 }, (_, i) => Buffer.alloc(64 * 1024, i));
    const whole = Buffer.concat(chunks);

    await writeVerifiedFile(bodyOf(chunks), path, 'wx', new Verifier({ md5: md5(whole) }));

    expect(md5(await readFile(path))).toBe(md5(whole));
  });

  it('keeps every byte a failing download delivered, so a resumed copy continues after them', async () => {
    const path = await freshFile('cut');
    const chunks = [Buffer.alloc(10_000, 1), Buffer.alloc(10_000, 2), Buffer.alloc(10_000, 3)];
    const cut = new Error('the body was cut off');

    await expect(writeVerifiedFile(bodyOf(chunks, cut), path, 'w', new Verifier())).rejects.toBe(cut);

    expect(await readFile(path)).toEqual(Buffer.concat(chunks));
  });

  it('refuses bytes that are not the listed ones, and the caller is told before anything is placed', async () => {
    const path = await freshFile('wrong');
    const body = bodyOf([Buffer.alloc(1000, 9)]);

    await expect(
      writeVerifiedFile(body, path, 'wx', new Verifier({ bytes: 1000, md5: md5(Buffer.alloc(1000, 8)) })),
    ).rejects.toBeInstanceOf(IntegrityError);
  });
});

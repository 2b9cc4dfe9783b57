import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GroupCommit } from '../shared/local/groupCommit.js';
import { openDatabase } from '../shared/local/sqlite.js';

const folders: string[] = [];
afterAll(async () => {
  await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
});

async function freshDatabase() {
  const folder = await mkdtemp(join(tmpdir(), 'group-commit-'));
  folders.push(folder);
  const file = join(folder, 'state.sqlite');
  const db = openDatabase(file, { synchronous: 'NORMAL' });
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
  return { db, group: new GroupCommit(db, file) };
}

describe('group commit of SQLite writes', () => {
  it('commits writes asked for together once, each visible after it resolves', async () => {
    const { db, group } = await freshDatabase();
    const insert = db.prepare('INSERT INTO t (id, v) VALUES (?, ?)');

    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => group.run(() => insert.run(i, `v${i}`).changes)),
    );

    expect(results).toEqual(Array(50).fill(1));
    expect(group.stats).toEqual({ commits: 1, writes: 50, syncs: 1 });
    expect(db.prepare('SELECT COUNT(*) AS n FROM t').get()).toEqual({ n: 50 });
    db.close();
  });

  it('undoes and rejects only the write that failed, keeping the others of its group', async () => {
    const { db, group } = await freshDatabase();
    const insert = db.prepare('INSERT INTO t (id, v) VALUES (?, ?)');

    const outcomes = await Promise.allSettled([
      group.run(() => insert.run(1, 'kept')),
      group.run(() => {
        insert.run(2, 'undone');
        throw new Error('refused');
      }),
      group.run(() => insert.run(3, 'kept too')),
    ]);

    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(db.prepare('SELECT id FROM t ORDER BY id').all()).toEqual([{ id: 1 }, { id: 3 }]);
    expect(group.stats.commits).toBe(1);
    db.close();
  });

  it('commits what is pending when flushed before the connection closes', async () => {
    const { db, group } = await freshDatabase();
    const insert = db.prepare('INSERT INTO t (id, v) VALUES (?, ?)');

    const pending = group.run(() => insert.run(7, 'late'), { durable: false });
    group.flush();

    await expect(pending).resolves.toMatchObject({ changes: 1 });
    expect(db.prepare('SELECT v FROM t WHERE id = 7').get()).toEqual({ v: 'late' });
    db.close();
  });
});

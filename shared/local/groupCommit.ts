import { open } from 'node:fs/promises';
import type { DatabaseSync, StatementSync } from 'node:sqlite';

interface PendingWrite {
  work: () => unknown;
  durable: boolean;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/** Most writes one commit carries; the rest wait for the next. */
const MAX_WRITES_PER_COMMIT = 1_000;

/**
 * Makes a WAL database's commits durable off the event loop: the connection runs with
 * synchronous=NORMAL (a COMMIT writes the log without waiting for the disk) and this fsyncs the
 * log in libuv's pool, so what synchronous=FULL gives (the commit on disk before anyone hears of
 * it) costs the event loop nothing. A log already folded into the database (and removed) is synced.
 */
export async function syncWriteAheadLog(databaseFile: string): Promise<void> {
  const handle = await open(`${databaseFile}-wal`, 'r').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (!handle) return;
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Group commit for one SQLite connection: writes asked for in the same turn of the event loop run
 * in one BEGIN IMMEDIATE transaction, each inside its own savepoint (a write that throws is undone
 * alone and rejects alone), and every promise settles only once the COMMIT is on disk (the log
 * fsynced off the event loop, see syncWriteAheadLog), so a caller never goes on believing a write
 * is durable before it is. One fsync then serves many writes.
 */
export class GroupCommit {
  private pending: PendingWrite[] = [];
  private scheduled = false;
  /** Commits made, writes they carried and log fsyncs, for measurements. */
  readonly stats = { commits: 0, writes: 0, syncs: 0 };
  /** Prepared once: each write runs inside a savepoint, and `exec` would parse these every time. */
  private readonly savepoint: { open: StatementSync; release: StatementSync; undo: StatementSync };

  /** `databaseFile`: the WAL database opened with synchronous=NORMAL whose log this syncs after each commit. */
  constructor(
    private readonly db: DatabaseSync,
    private readonly databaseFile: string,
  ) {
    this.savepoint = {
      open: db.prepare('SAVEPOINT write'),
      release: db.prepare('RELEASE write'),
      undo: db.prepare('ROLLBACK TO write'),
    };
  }

  /**
   * Runs `work` (synchronous SQLite calls) in the next group commit; resolves with its result once
   * committed and on disk. `durable: false` (a lease, a progress counter: losing it to a power cut
   * is harmless) resolves once committed, without waiting for the disk.
   */
  run<T>(work: () => T, options: { durable?: boolean } = {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const durable = options.durable ?? true;
      this.pending.push({ work, durable, resolve: resolve as (value: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Commits everything asked for so far, now (also before the connection closes). */
  flush(): void {
    this.scheduled = false;
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, MAX_WRITES_PER_COMMIT);
      this.commit(batch);
    }
  }

  private commit(batch: PendingWrite[]): void {
    const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
    try {
      this.db.exec('BEGIN IMMEDIATE');
      for (const write of batch) {
        this.savepoint.open.run();
        try {
          outcomes.push({ ok: true, value: write.work() });
          this.savepoint.release.run();
        } catch (error) {
          this.savepoint.undo.run();
          this.savepoint.release.run();
          outcomes.push({ ok: false, error });
        }
      }
      this.db.exec('COMMIT');
    } catch (error) {
      // Nothing of this batch is committed: every write fails with the reason.
      if (this.db.isOpen && this.db.isTransaction) this.db.exec('ROLLBACK');
      for (const write of batch) write.reject(error);
      return;
    }
    this.stats.commits += 1;
    this.stats.writes += batch.length;
    const settle = (durable: boolean) =>
      batch.forEach((write, i) => {
        if (write.durable !== durable) return;
        const outcome = outcomes[i];
        if (outcome?.ok) write.resolve(outcome.value);
        else write.reject(outcome?.error);
      });
    settle(false);
    if (!batch.some((write) => write.durable)) return;
    this.stats.syncs += 1;
    syncWriteAheadLog(this.databaseFile).then(
      () => settle(true),
      (error: unknown) => {
        for (const write of batch) if (write.durable) write.reject(error);
      },
    );
  }
}

import { join } from 'node:path';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { LOCAL_CONTROL_DIR } from '../constants.js';
import { openDatabase } from '../local/sqlite.js';

/** File name of the pull index inside the control folder. */
export const PULL_INDEX_FILE = 'pull.sqlite';

/** Where the MD5 a file was checked against came from. */
export type Md5Source = 'metadata' | 'tag' | 'etag' | 'none';

/** What the index knows about one pulled object and the local file it became. */
export interface PulledRecord {
  key: string;
  /** Relative path inside the destination (`/` separators). */
  localPath: string;
  size: number;
  /** S3 ETag as listed (quotes included): the change token compared on every run. */
  etag: string;
  md5?: string;
  md5Source: Md5Source;
  /** Size and mtime of the local file as the file system reported them after writing. */
  localSize: number;
  localMtimeMs: number;
  storageClass?: string;
  pulledAt: string;
}

export interface PartialRecord {
  key: string;
  /** The ETag the partial bytes belong to; a different ETag means start over. */
  etag: string;
  startedAt: string;
}

export interface RestoreRecord {
  key: string;
  etag: string;
  tier: string;
  requestedAt: string;
}

interface ObjectRow {
  key: string;
  local_path: string;
  size: number;
  etag: string;
  md5: string | null;
  md5_source: string;
  local_size: number;
  local_mtime_ms: number;
  storage_class: string | null;
  pulled_at: string;
}

/**
 * The pull's memory, in `DEST/.cloudinary-backup/pull.sqlite`: per key the ETag, size and MD5
 * the local file was verified against and the file's own size and mtime, so an unchanged file
 * is recognised from the listing and one stat; plus partial downloads and restore requests.
 * WAL with synchronous=NORMAL: a power cut may lose the last rows, which only costs a re-check.
 */
export class PullIndex {
  private readonly db: DatabaseSync;
  private readonly sql: Record<
    | 'get'
    | 'put'
    | 'remove'
    | 'byPath'
    | 'all'
    | 'partial'
    | 'putPartial'
    | 'removePartial'
    | 'restore'
    | 'putRestore'
    | 'removeRestore',
    StatementSync
  >;

  /** Opens `<root>/.cloudinary-backup/pull.sqlite`, or an in-memory index when `file` is ':memory:'. */
  constructor(root: string, options: { file?: string } = {}) {
    this.db = openDatabase(options.file ?? join(root, LOCAL_CONTROL_DIR, PULL_INDEX_FILE), {
      synchronous: 'NORMAL',
    });
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS objects (
        key TEXT PRIMARY KEY,
        local_path TEXT NOT NULL,
        size INTEGER NOT NULL,
        etag TEXT NOT NULL,
        md5 TEXT,
        md5_source TEXT NOT NULL,
        local_size INTEGER NOT NULL,
        local_mtime_ms REAL NOT NULL,
        storage_class TEXT,
        pulled_at TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS objects_path ON objects (local_path);
      CREATE TABLE IF NOT EXISTS partials (key TEXT PRIMARY KEY, etag TEXT NOT NULL, started_at TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS restores (
        key TEXT PRIMARY KEY, etag TEXT NOT NULL, tier TEXT NOT NULL, requested_at TEXT NOT NULL
      );
    `);
    this.sql = {
      get: this.db.prepare('SELECT * FROM objects WHERE key = ?'),
      put: this.db.prepare(`
        INSERT INTO objects (key, local_path, size, etag, md5, md5_source, local_size, local_mtime_ms, storage_class, pulled_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (key) DO UPDATE SET local_path = excluded.local_path, size = excluded.size, etag = excluded.etag,
          md5 = excluded.md5, md5_source = excluded.md5_source, local_size = excluded.local_size,
          local_mtime_ms = excluded.local_mtime_ms, storage_class = excluded.storage_class, pulled_at = excluded.pulled_at
      `),
      remove: this.db.prepare('DELETE FROM objects WHERE key = ?'),
      byPath: this.db.prepare('SELECT * FROM objects WHERE local_path = ?'),
      all: this.db.prepare('SELECT * FROM objects WHERE key > ? ORDER BY key LIMIT 1000'),
      partial: this.db.prepare('SELECT key, etag, started_at AS startedAt FROM partials WHERE key = ?'),
      putPartial: this.db.prepare(
        'INSERT INTO partials (key, etag, started_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET etag = excluded.etag, started_at = excluded.started_at',
      ),
      removePartial: this.db.prepare('DELETE FROM partials WHERE key = ?'),
      restore: this.db.prepare(
        'SELECT key, etag, tier, requested_at AS requestedAt FROM restores WHERE key = ?',
      ),
      putRestore: this.db.prepare(
        'INSERT INTO restores (key, etag, tier, requested_at) VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET etag = excluded.etag, tier = excluded.tier, requested_at = excluded.requested_at',
      ),
      removeRestore: this.db.prepare('DELETE FROM restores WHERE key = ?'),
    };
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }

  get(key: string): PulledRecord | undefined {
    const row = this.sql.get.get(key) as ObjectRow | undefined;
    return row ? fromRow(row) : undefined;
  }

  byPath(localPath: string): PulledRecord[] {
    return (this.sql.byPath.all(localPath) as unknown as ObjectRow[]).map(fromRow);
  }

  *all(): Iterable<PulledRecord> {
    let after = '';
    for (;;) {
      const rows = this.sql.all.all(after) as unknown as ObjectRow[];
      for (const row of rows) yield fromRow(row);
      const last = rows.at(-1);
      if (!last) return;
      after = last.key;
    }
  }

  put(record: PulledRecord): void {
    this.sql.put.run(
      record.key,
      record.localPath,
      record.size,
      record.etag,
      record.md5 ?? null,
      record.md5Source,
      record.localSize,
      record.localMtimeMs,
      record.storageClass ?? null,
      record.pulledAt,
    );
  }

  remove(key: string): void {
    this.sql.remove.run(key);
  }

  partial(key: string): PartialRecord | undefined {
    return this.sql.partial.get(key) as PartialRecord | undefined;
  }

  putPartial(record: PartialRecord): void {
    this.sql.putPartial.run(record.key, record.etag, record.startedAt);
  }

  removePartial(key: string): void {
    this.sql.removePartial.run(key);
  }

  restore(key: string): RestoreRecord | undefined {
    return this.sql.restore.get(key) as RestoreRecord | undefined;
  }

  putRestore(record: RestoreRecord): void {
    this.sql.putRestore.run(record.key, record.etag, record.tier, record.requestedAt);
  }

  removeRestore(key: string): void {
    this.sql.removeRestore.run(key);
  }
}

function fromRow(row: ObjectRow): PulledRecord {
  return {
    key: row.key,
    localPath: row.local_path,
    size: row.size,
    etag: row.etag,
    md5: row.md5 ?? undefined,
    md5Source: row.md5_source as Md5Source,
    localSize: row.local_size,
    localMtimeMs: row.local_mtime_ms,
    storageClass: row.storage_class ?? undefined,
    pulledAt: row.pulled_at,
  };
}

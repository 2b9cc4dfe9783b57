import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';

type SqliteModule = typeof import('node:sqlite');

let loaded: SqliteModule | undefined;

/**
 * Loads `node:sqlite` without its one-time ExperimentalWarning: the CLIs print for people, and
 * a warning about a Node internal they cannot act on is noise.
 */
export function loadSqlite(): SqliteModule {
  if (loaded) return loaded;
  const emitWarning = process.emitWarning;
  process.emitWarning = function (warning: string | Error, ...rest: unknown[]) {
    const text = typeof warning === 'string' ? warning : warning.message;
    if (/sqlite/iu.test(text)) return;
    return (emitWarning as (...args: unknown[]) => void).call(process, warning, ...rest);
  } as typeof process.emitWarning;
  try {
    loaded = createRequire(import.meta.url)('node:sqlite') as SqliteModule;
  } finally {
    process.emitWarning = emitWarning;
  }
  return loaded;
}

export interface OpenOptions {
  /** FULL survives a power cut after commit; NORMAL (with WAL) stays consistent but may lose the last commits. */
  synchronous?: 'FULL' | 'NORMAL';
  busyTimeoutMs?: number;
}

/** Opens (creating it and its folder) a SQLite file in WAL mode, ready for several processes. */
export function openDatabase(file: string, options: OpenOptions = {}): DatabaseSync {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const { DatabaseSync } = loadSqlite();
  const db = new DatabaseSync(file);
  db.exec(`PRAGMA busy_timeout = ${Math.trunc(options.busyTimeoutMs ?? 10_000)}`);
  db.exec('PRAGMA journal_mode = WAL');
  db.exec(`PRAGMA synchronous = ${options.synchronous ?? 'FULL'}`);
  return db;
}

/** Runs `work` in a write transaction taken up front (BEGIN IMMEDIATE), so read-then-write is atomic. */
export function inTransaction<T>(db: DatabaseSync, work: () => T): T {
  db.exec('BEGIN IMMEDIATE');
  try {
    const result = work();
    db.exec('COMMIT');
    return result;
  } catch (error) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw error;
  }
}

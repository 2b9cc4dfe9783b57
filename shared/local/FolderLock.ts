import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { LOCAL_CONTROL_DIR } from '../constants.js';
import { ConfigError } from '../errors.js';
import { removeFile } from './files.js';
import { loadSqlite } from './sqlite.js';

/** SQLite file whose exclusive lock says a backup is writing into the folder. */
export const LOCK_DB_FILE = 'backup-lock.sqlite';
/** Who holds the lock, for the message only: the lock itself is the database's. */
const HOLDER_FILE = 'backup-lock.pid';
/** How long a new backup waits for the lock before it says another one runs. */
const LOCK_WAIT_MS = 1_000;
/** The PID file of earlier versions, which a killed run left behind. */
const LEGACY_LOCK_FILE = 'backup.lock';

/**
 * Takes the folder's backup lock: an exclusive SQLite lock (a POSIX record lock), which the OS
 * drops the moment its process dies, even as a zombie after kill -9, and which a reused PID can
 * never hold. Returns the release.
 */
export async function acquireFolderLock(dest: string): Promise<() => Promise<void>> {
  const controlDir = join(dest, LOCAL_CONTROL_DIR);
  const { DatabaseSync } = loadSqlite();
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(join(controlDir, LOCK_DB_FILE));
    // A process killed a moment ago lets go once its last thread is gone: give it that moment.
    db.exec(`PRAGMA busy_timeout = ${LOCK_WAIT_MS}`);
    db.exec('PRAGMA locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
  } catch (error) {
    db?.close();
    if (isBusy(error)) {
      const holder = readHolder(join(controlDir, HOLDER_FILE));
      const who = /^\d+$/u.test(holder) ? ` (process ${holder})` : '';
      throw new ConfigError(
        `another backup into ${dest} is running${who}; wait for it to finish, or stop it.`,
      );
    }
    throw error;
  }
  writeFileSync(join(controlDir, HOLDER_FILE), `${process.pid}\n`);
  await removeFile(join(controlDir, LEGACY_LOCK_FILE));
  const held = db;
  return async () => {
    await removeFile(join(controlDir, HOLDER_FILE));
    if (held.isTransaction) held.exec('ROLLBACK');
    held.close();
  };
}

function readHolder(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return '';
  }
}

function isBusy(error: unknown): boolean {
  const e = error as { errcode?: number; message?: string };
  // SQLITE_BUSY (5) and SQLITE_LOCKED (6), whatever the extended code.
  return (
    ((e.errcode ?? 0) & 0xff) === 5 ||
    ((e.errcode ?? 0) & 0xff) === 6 ||
    /locked|busy/iu.test(e.message ?? '')
  );
}

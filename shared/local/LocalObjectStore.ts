import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, mkdirSync, type BigIntStats } from 'node:fs';
import { lstat, rename, truncate } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { LOCAL_CONTROL_DIR } from '../constants.js';
import { AssetGoneError, IntegrityError } from '../errors.js';
import { Verifier } from '../hashing.js';
import type {
  CopyCheckpoint,
  CopyOptions,
  ObjectStore,
  PutOptions,
  PutResult,
  StoredObject,
} from '../types.js';
import { fsyncDir, hashFile, moveIntoPlace, removeFile } from './files.js';
import {
  assertNoSymlinkParents,
  foldPath,
  hashedRelativePath,
  openNoFollow,
  placeKey,
  prepareParentDirs,
  resolveInside,
  UNSAFE_DIR,
  UnsafePathError,
} from './safePath.js';
import { syncWriteAheadLog } from './groupCommit.js';
import { PartialFiles } from './PartialFiles.js';
import { writeVerifiedFile } from './writeVerifiedFile.js';
import { writeUnsafeIndex } from './unsafeIndex.js';
import { openDatabase } from './sqlite.js';

/** File name of the object index inside the control folder. */
export const OBJECT_INDEX_FILE = 'objects.sqlite';
const LIST_PAGE = 500;
/** Rewrites of `_unsafe/INDEX.tsv` at most this often while a backup runs (and once on close). */
const UNSAFE_INDEX_EVERY_MS = 2_000;

/** Most files one group places and commits; the rest wait for the next. */
const MAX_PLACEMENTS_PER_GROUP = 256;

interface PendingPlacement {
  key: string;
  tempPath: string;
  verifier: Verifier;
  options: PutOptions;
  /** The file's size, time and inode once written (a rename keeps them): its change token. */
  written: BigIntStats;
  resolve: () => void;
  reject: (error: unknown) => void;
}

interface ObjectRow {
  key: string;
  local_path: string;
  bytes: number;
  md5: string;
  metadata: string;
  content_type: string | null;
  file_token: string;
}

/**
 * ObjectStore over a folder: the object with key K is the file `DIR/K` (keys that cannot be a
 * path go to `DIR/_unsafe/<sha256>`), so a local backup and a pulled bucket look the same.
 * MD5 and metadata live in a SQLite index in `DIR/.cloudinary-backup/`, not beside the files.
 */
export class LocalObjectStore implements ObjectStore {
  readonly root: string;
  private readonly controlDir: string;
  private readonly tmpDir: string;
  private readonly indexFile: string;
  private readonly db: DatabaseSync;
  private readonly statements: {
    byKey: StatementSync;
    byFold: StatementSync;
    atFold: StatementSync;
    underFold: StatementSync;
    move: StatementSync;
    unsafe: StatementSync;
    upsert: StatementSync;
    page: StatementSync;
  };
  /** One put per key at a time in this process, so the index row always describes the file. */
  private readonly locks = new Map<string, Promise<unknown>>();
  /** Names promised by `localPathOf` in this run (fold → key), and the folders they need. */
  private readonly reserved = new Map<string, string>();
  private readonly reservedDirs = new Set<string>();
  /** Set when the put being placed moved another file under `_unsafe/`. */
  private movedAside = false;
  /** `_unsafe/INDEX.tsv` is behind the index; rewritten every few seconds and on close. */
  private indexDirty = false;
  private indexWrittenAt = 0;
  private putSeen = false;
  /** Finished files waiting for their group, and the group being placed (one at a time). */
  private readonly pendingPlacements: PendingPlacement[] = [];
  private placing: Promise<void> | undefined;
  /** Resumable partial files in the temp folder, so no copy lists the folder again. */
  private readonly partials: PartialFiles;
  /** Index commits made since this store opened (one per group), for measurements. */
  commits = 0;

  constructor(root: string) {
    this.root = root;
    this.controlDir = join(root, LOCAL_CONTROL_DIR);
    this.tmpDir = join(this.controlDir, 'tmp');
    mkdirSync(this.tmpDir, { recursive: true });
    this.partials = new PartialFiles(this.tmpDir);
    this.indexFile = join(this.controlDir, OBJECT_INDEX_FILE);
    // NORMAL: each group fsyncs the log itself, off the event loop.
    this.db = openDatabase(this.indexFile, { synchronous: 'NORMAL' });
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS objects (
        key TEXT PRIMARY KEY,
        local_path TEXT NOT NULL,
        fold TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        md5 TEXT NOT NULL,
        metadata TEXT NOT NULL,
        content_type TEXT,
        file_token TEXT NOT NULL,
        stored_at TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS objects_fold ON objects (fold);
    `);
    this.statements = {
      byKey: this.db.prepare('SELECT * FROM objects WHERE key = ?'),
      byFold: this.db.prepare('SELECT key FROM objects WHERE fold = ? AND key <> ? LIMIT 1'),
      atFold: this.db.prepare('SELECT * FROM objects WHERE fold = ?'),
      // Folds below `F/`: from `F/` up to (not including) `F0`, '0' being the character after '/'.
      underFold: this.db.prepare('SELECT key FROM objects WHERE fold >= ? AND fold < ? LIMIT 1'),
      move: this.db.prepare('UPDATE objects SET local_path = ?, fold = ? WHERE key = ?'),
      unsafe: this.db.prepare(
        // By fold, which is indexed: `_unsafe/` is all lower case, so its fold is itself.
        `SELECT key, local_path FROM objects WHERE fold >= '${UNSAFE_DIR}/' AND fold < '${UNSAFE_DIR}0'`,
      ),
      upsert: this.db.prepare(`
        INSERT INTO objects (key, local_path, fold, bytes, md5, metadata, content_type, file_token, stored_at)
        VALUES (:key, :local_path, :fold, :bytes, :md5, :metadata, :content_type, :file_token, :stored_at)
        ON CONFLICT (key) DO UPDATE SET local_path = excluded.local_path, fold = excluded.fold,
          bytes = excluded.bytes, md5 = excluded.md5, metadata = excluded.metadata,
          content_type = excluded.content_type, file_token = excluded.file_token, stored_at = excluded.stored_at
      `),
      page: this.db.prepare(
        'SELECT * FROM objects WHERE key > :after AND key >= :prefix ORDER BY key LIMIT :limit',
      ),
    };
  }

  close(): void {
    if (this.db.isOpen && this.indexDirty) this.flushUnsafeIndex();
    if (this.db.isOpen) this.db.close();
  }

  async put(key: string, body: Readable, options: PutOptions): Promise<PutResult> {
    return this.withKeyLock(key, () => this.putUnlocked(key, body, options));
  }

  /**
   * The partial file of an interrupted copy of `version` keeps every byte written before the stop
   * (kill -9 included: written bytes are the kernel's); its length is where the copy continues.
   */
  async resume(key: string, version: number): Promise<CopyCheckpoint | undefined> {
    return this.withKeyLock(key, async () => {
      const own = resumableName(key, version);
      let kept: CopyCheckpoint | undefined;
      for (const name of this.partials.of(own)) {
        const info = name === own ? await lstat(join(this.tmpDir, name)).catch(() => undefined) : undefined;
        if (info?.isFile() && info.size > 0) kept = { key, version, bytes: info.size };
        // Another version's bytes are not this version's prefix.
        else await this.partials.remove(name);
      }
      return kept;
    });
  }

  /** Removes the partial files of every version of `key` (a copy given up); returns how many. */
  async discardIncomplete(key: string): Promise<number> {
    return this.withKeyLock(key, async () => {
      let discarded = 0;
      for (const name of this.partials.of(resumableName(key, 0))) {
        await this.partials.remove(name);
        discarded += 1;
      }
      return discarded;
    });
  }

  /** A renamed asset: the file is copied inside the folder (read back and verified), not downloaded. */
  async copy(from: { key: string }, key: string, options: CopyOptions): Promise<PutResult> {
    const body = await this.get(from.key);
    return this.put(key, body, {
      metadata: options.metadata,
      createdAt: options.createdAt,
      signal: options.signal,
      expected: options.expected,
    });
  }

  private async putUnlocked(key: string, body: Readable, options: PutOptions): Promise<PutResult> {
    const resumable = options.resumable;
    const tempPath = join(
      this.tmpDir,
      resumable ? resumableName(key, resumable.version) : `${randomUUID()}.part`,
    );
    const from = resumable?.from?.version === resumable?.version ? (resumable?.from?.bytes ?? 0) : 0;
    let verifier: Verifier | undefined;
    try {
      let start: { hash: ReturnType<typeof createHash>; bytes: number } | undefined;
      if (from > 0) {
        // Bytes past the checkpoint are dropped; the kept prefix is hashed from disk, not fetched again.
        await truncate(tempPath, from);
        start = await hashFile(tempPath, createHash('md5'), { length: from, signal: options.signal });
        if (start.bytes !== from)
          throw new IntegrityError(`${key}: the partial file is shorter than its checkpoint`);
      }
      verifier = new Verifier(options.expected ?? {}, key, start);
      // Fsynced before it is placed (in libuv's pool, many files at once): the rename never publishes
      // bytes still in the page cache.
      const flags = from > 0 ? 'a' : resumable ? 'w' : 'wx';
      if (resumable) this.partials.note(basename(tempPath));
      const createdAt = options.createdAt ? new Date(options.createdAt) : undefined;
      const written = await writeVerifiedFile(body, tempPath, flags, verifier, {
        signal: options.signal,
        mtime: createdAt,
      });
      await this.placeWithGroup({ key, tempPath, verifier, options, written });
      this.partials.forget(basename(tempPath));
      return { key, bytes: verifier.bytes, md5: verifier.md5 };
    } catch (error) {
      body.destroy();
      // An interrupted resumable copy keeps its bytes for the next attempt; bytes that did not verify go.
      if (!resumable || error instanceof IntegrityError) {
        await removeFile(tempPath);
        this.partials.forget(basename(tempPath));
      }
      throw error;
    }
  }

  /** Joins the next group of finished files; resolves once this one is placed, its folder synced and its row committed. */
  private placeWithGroup(file: Omit<PendingPlacement, 'resolve' | 'reject'>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pendingPlacements.push({ ...file, resolve, reject });
      this.placing ??= this.placeGroups().finally(() => {
        this.placing = undefined;
      });
    });
  }

  /**
   * Group commit: files finished while the previous group was being placed are placed together,
   * one at a time (a file and a folder of one name are decided together), their folders fsynced at
   * once, and their index rows committed in one transaction; only then do their puts resolve.
   */
  private async placeGroups(): Promise<void> {
    // Lets files finishing in this turn of the event loop join the first group.
    await new Promise((resolve) => setImmediate(resolve));
    while (this.pendingPlacements.length > 0) {
      const group = this.pendingPlacements.splice(0, MAX_PLACEMENTS_PER_GROUP);
      await this.placeGroup(group);
    }
  }

  private async placeGroup(group: PendingPlacement[]): Promise<void> {
    const placed: PendingPlacement[] = [];
    const folders = new Set<string>();
    // Parent folders are checked once per group, not once per file.
    const checkedDirs = new Set<string>();
    try {
      this.db.exec('BEGIN IMMEDIATE');
      for (const file of group) {
        try {
          folders.add(dirname(await this.commit(file, checkedDirs)));
          placed.push(file);
        } catch (error) {
          file.reject(error);
        }
      }
      this.db.exec('COMMIT');
      this.commits += 1;
      // A rename survives a power cut once its folder's entry list is on disk; the rows once the log is.
      await Promise.all([
        ...[...folders].map((folder) => fsyncDir(folder)),
        syncWriteAheadLog(this.indexFile),
      ]);
    } catch (error) {
      if (this.db.isOpen && this.db.isTransaction) this.db.exec('ROLLBACK');
      for (const file of placed) file.reject(error);
      return;
    }
    if (this.indexDirty && Date.now() - this.indexWrittenAt >= UNSAFE_INDEX_EVERY_MS) this.flushUnsafeIndex();
    for (const file of placed) file.resolve();
  }

  /** Places one finished file and writes its index row (committed with its group); returns its final path. */
  private async commit(file: PendingPlacement, checkedDirs: Set<string>): Promise<string> {
    const { key, verifier, options } = file;
    this.movedAside = false;
    const relativePath = await this.placementFor(key);
    // The time was set on the open file: nothing is looked up by path again.
    const finalPath = await moveIntoPlace(file.tempPath, this.root, relativePath, undefined, checkedDirs);
    this.statements.upsert.run({
      key,
      local_path: relativePath,
      fold: foldPath(relativePath),
      bytes: verifier.bytes,
      md5: verifier.md5,
      metadata: JSON.stringify(options.metadata),
      content_type: options.contentType ?? null,
      file_token: fileToken(file.written),
      stored_at: new Date().toISOString(),
    });
    // The row holds the name now: a promise kept per file would grow with the library.
    const promised = foldPath(placeKey(key).relative);
    if (this.reserved.get(promised) === key) this.reserved.delete(promised);
    // The first put of a run rewrites it too: a killed run may have left files it does not name yet.
    if (!this.putSeen || relativePath.startsWith(`${UNSAFE_DIR}/`) || this.movedAside) this.indexDirty = true;
    this.putSeen = true;
    return finalPath;
  }

  /** Where the key's file is, or where a put would place it now (the manifest and `--json` events say it). */
  localPathOf(key: string): string {
    const row = this.statements.byKey.get(key) as ObjectRow | undefined;
    if (row) return row.local_path;
    const placement = placeKey(key);
    if (placement.unsafeReason !== undefined) return placement.relative;
    const fold = foldPath(placement.relative);
    if (this.clashes(key, fold)) return hashedRelativePath(key);
    // Said once, kept: a twin listed later in this run goes under `_unsafe/`, as the put will decide.
    this.reserved.set(fold, key);
    for (const parent of parentFolds(fold)) this.reservedDirs.add(parent);
    return placement.relative;
  }

  /** Whether another key has (or was promised) this name, or needs it as a folder. */
  private clashes(key: string, fold: string): boolean {
    const promised = this.reserved.get(fold);
    return (
      (promised !== undefined && promised !== key) ||
      this.reservedDirs.has(fold) ||
      this.statements.byFold.get(fold, key) !== undefined ||
      this.statements.underFold.get(`${fold}/`, `${fold}0`) !== undefined
    );
  }

  /** Rewrites `_unsafe/INDEX.tsv` from the index: which asset each hashed file holds. */
  private flushUnsafeIndex(): void {
    const rows = this.statements.unsafe.all() as unknown as ObjectRow[];
    writeUnsafeIndex(
      this.root,
      rows.map((row) => ({ path: row.local_path, key: row.key })),
    );
    this.indexDirty = false;
    this.indexWrittenAt = Date.now();
  }

  async head(key: string): Promise<StoredObject | undefined> {
    const row = this.statements.byKey.get(key) as ObjectRow | undefined;
    const relativePath = row?.local_path ?? placeKey(key).relative;
    const info = await this.statFile(relativePath);
    if (!info) return undefined;
    const token = fileToken(info);
    // A file changed behind our back keeps its bytes and time, not our MD5 and metadata.
    const trusted = row !== undefined && row.file_token === token;
    return {
      key,
      bytes: Number(info.size),
      md5: trusted ? row.md5 : undefined,
      metadata: trusted ? (JSON.parse(row.metadata) as Record<string, string>) : {},
      etag: token,
      lastModified: info.mtime,
    };
  }

  async *list(prefix: string): AsyncIterable<StoredObject> {
    let after = '';
    for (;;) {
      // Keys sharing a prefix are contiguous in byte order (SQLite's and S3's), so the first miss ends it.
      const rows = this.statements.page.all({ after, prefix, limit: LIST_PAGE }) as unknown as ObjectRow[];
      for (const row of rows) {
        if (!row.key.startsWith(prefix)) return;
        const found = await this.head(row.key);
        if (found) yield found;
      }
      const last = rows.at(-1);
      if (!last || rows.length < LIST_PAGE) return;
      after = last.key;
    }
  }

  async get(key: string, range?: { start: number; end?: number }): Promise<Readable> {
    const row = this.statements.byKey.get(key) as ObjectRow | undefined;
    const relativePath = row?.local_path ?? placeKey(key).relative;
    const path = resolveInside(this.root, relativePath);
    try {
      await assertNoSymlinkParents(this.root, relativePath);
      const handle = await openNoFollow(path);
      // `end` is inclusive, as in an HTTP Range header.
      return createReadStream(path, { fd: handle, start: range?.start, end: range?.end });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT')
        throw new AssetGoneError(`no object ${key} in ${this.root}`, { cause: error });
      throw error;
    }
  }

  /** Removes a copy and its index row (pruning); true when there was a file to remove. */
  async delete(key: string): Promise<boolean> {
    return this.withKeyLock(key, async () => {
      const row = this.statements.byKey.get(key) as ObjectRow | undefined;
      const relativePath = row?.local_path ?? placeKey(key).relative;
      const existed = (await this.statFile(relativePath)) !== undefined;
      if (existed) await removeFile(resolveInside(this.root, relativePath));
      this.db.prepare('DELETE FROM objects WHERE key = ?').run(key);
      if (relativePath.startsWith(`${UNSAFE_DIR}/`)) this.indexDirty = true;
      return existed;
    });
  }

  /**
   * The key's path, or a hashed one under `_unsafe/`, by the rule `npm run pull` applies to the
   * whole listing, so both write the same tree in any order: another key owning the same name on a
   * case-insensitive disk keeps it, and a folder beats a file of its name (a file already there
   * moves under `_unsafe/` when a key needs its name as a folder).
   */
  private async placementFor(key: string): Promise<string> {
    const existing = this.statements.byKey.get(key) as ObjectRow | undefined;
    if (existing) return existing.local_path;
    const placement = placeKey(key);
    if (placement.unsafeReason !== undefined) return placement.relative;
    const fold = foldPath(placement.relative);
    if (this.clashes(key, fold)) return hashedRelativePath(key);
    for (const parent of parentFolds(fold)) {
      for (const row of this.statements.atFold.all(parent) as unknown as ObjectRow[]) {
        await this.moveAside(row);
      }
    }
    return placement.relative;
  }

  /** Moves a file whose name a folder now needs to its `_unsafe/` name, keeping its bytes and times. */
  private async moveAside(row: ObjectRow): Promise<void> {
    const target = hashedRelativePath(row.key);
    const from = resolveInside(this.root, row.local_path);
    const info = await this.statFile(row.local_path);
    if (info && fileToken(info) === row.file_token) {
      await prepareParentDirs(this.root, target);
      await rename(from, resolveInside(this.root, target));
    }
    // A file changed or gone behind our back is not ours to move; its row points where it would be.
    this.statements.move.run(target, foldPath(target), row.key);
    this.movedAside = true;
  }

  private async statFile(relativePath: string): Promise<BigIntStats | undefined> {
    const path = resolveInside(this.root, relativePath);
    try {
      await assertNoSymlinkParents(this.root, relativePath);
      const info = await lstat(path, { bigint: true });
      return info.isFile() ? info : undefined;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // A parent that is a file or a symlink means no object we would read is there.
      if (code === 'ENOENT' || code === 'ENOTDIR' || error instanceof UnsafePathError) return undefined;
      throw error;
    }
  }

  private async withKeyLock<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(key) ?? Promise.resolve();
    const current = previous.catch(() => undefined).then(work);
    this.locks.set(key, current);
    try {
      return await current;
    } finally {
      if (this.locks.get(key) === current) this.locks.delete(key);
    }
  }
}

/** The partial file of a resumable copy: one per key and version, found again by the next attempt. */
export function resumableName(key: string, version: number): string {
  return `${createHash('sha256').update(key, 'utf8').digest('hex').slice(0, 40)}.v${version}.part`;
}

/** Change token of a file: size, modification time and inode, so a replaced file never matches. */
function fileToken(info: BigIntStats): string {
  return `${info.size}-${info.mtimeNs}-${info.ino}`;
}

/** The folders above a folded path, outermost first. */
function parentFolds(fold: string): string[] {
  const segments = fold.split('/');
  return segments.slice(0, -1).map((_, i) => segments.slice(0, i + 1).join('/'));
}

import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, type BigIntStats } from 'node:fs';
import { lstat, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { LOCAL_CONTROL_DIR } from '../constants.js';
import { AssetGoneError } from '../errors.js';
import { VerifyingStream } from '../hashing.js';
import type { CopyOptions, ObjectStore, PutOptions, PutResult, StoredObject } from '../types.js';
import { commitFile, removeFile } from './files.js';
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
import { writeUnsafeIndex } from './unsafeIndex.js';
import { openDatabase } from './sqlite.js';

/** File name of the object index inside the control folder. */
export const OBJECT_INDEX_FILE = 'objects.sqlite';
const LIST_PAGE = 500;
/** Rewrites of `_unsafe/INDEX.tsv` at most this often while a backup runs (and once on close). */
const UNSAFE_INDEX_EVERY_MS = 2_000;

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
  /** Placing files is one at a time: a file and a folder of one name are decided together. */
  private placing: Promise<unknown> = Promise.resolve();

  constructor(root: string) {
    this.root = root;
    this.controlDir = join(root, LOCAL_CONTROL_DIR);
    this.tmpDir = join(this.controlDir, 'tmp');
    mkdirSync(this.tmpDir, { recursive: true });
    this.db = openDatabase(join(this.controlDir, OBJECT_INDEX_FILE));
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
    const tempPath = join(this.tmpDir, `${randomUUID()}.part`);
    const verifier = new VerifyingStream(options.expected ?? {}, key);
    try {
      // `flush` fsyncs before close: the rename below never publishes bytes still in the page cache.
      await pipeline(body, verifier, createWriteStream(tempPath, { flags: 'wx', flush: true }), {
        signal: options.signal,
      });
      const createdAt = options.createdAt ? new Date(options.createdAt) : undefined;
      await this.onePlacementAtATime(() => this.commit(key, tempPath, verifier, options, createdAt));
      return { key, bytes: verifier.bytes, md5: verifier.md5 };
    } catch (error) {
      body.destroy();
      await removeFile(tempPath);
      throw error;
    }
  }

  private async commit(
    key: string,
    tempPath: string,
    verifier: VerifyingStream,
    options: PutOptions,
    createdAt: Date | undefined,
  ): Promise<void> {
    this.movedAside = false;
    const relativePath = await this.placementFor(key);
    const finalPath = await commitFile(tempPath, this.root, relativePath, createdAt);
    const info = await lstat(finalPath, { bigint: true });
    this.statements.upsert.run({
      key,
      local_path: relativePath,
      fold: foldPath(relativePath),
      bytes: verifier.bytes,
      md5: verifier.md5,
      metadata: JSON.stringify(options.metadata),
      content_type: options.contentType ?? null,
      file_token: fileToken(info),
      stored_at: new Date().toISOString(),
    });
    // The first put of a run rewrites it too: a killed run may have left files it does not name yet.
    if (!this.putSeen || relativePath.startsWith(`${UNSAFE_DIR}/`) || this.movedAside) this.indexDirty = true;
    this.putSeen = true;
    if (this.indexDirty && Date.now() - this.indexWrittenAt >= UNSAFE_INDEX_EVERY_MS) this.flushUnsafeIndex();
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

  private async onePlacementAtATime<T>(work: () => Promise<T>): Promise<T> {
    const current = this.placing.catch(() => undefined).then(work);
    this.placing = current;
    return current;
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

/** Change token of a file: size, modification time and inode, so a replaced file never matches. */
function fileToken(info: BigIntStats): string {
  return `${info.size}-${info.mtimeNs}-${info.ino}`;
}

/** The folders above a folded path, outermost first. */
function parentFolds(fold: string): string[] {
  const segments = fold.split('/');
  return segments.slice(0, -1).map((_, i) => segments.slice(0, i + 1).join('/'));
}

import { join } from 'node:path';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { LOCAL_CONTROL_DIR } from '../constants.js';
import { etagMismatch, StaleRunError } from '../errors.js';
import { assetIdOf } from '../keys.js';
import type { AssetRef, AssetState, FailureDetails, RunCounters, RunRecord, StateStore } from '../types.js';
import { GroupCommit } from './groupCommit.js';
import { openDatabase } from './sqlite.js';

/** File name of the state database inside the control folder. */
export const STATE_FILE = 'state.sqlite';
const LIST_PAGE = 500;
/** Longest error kept in a state, like the DynamoDB adapter (items have a size limit there). */
const MAX_ERROR_CHARS = 1000;

export interface SqliteStateStoreOptions {
  /** Database file; `<root>/.cloudinary-backup/state.sqlite` by default. */
  file?: string;
  /** Clock for lease expiry (tests). */
  now?: () => Date;
}

interface AssetRow {
  id: string;
  version: number;
  status: string;
  state: string;
}

interface LeaseRow {
  owner: string;
  expires_at: number;
}

interface RunRow {
  run_id: string;
  updated_at: string;
  record: string;
}

/**
 * StateStore in one SQLite file (`node:sqlite`): WAL, each commit's log fsynced before the write
 * resolves (GroupCommit), so a commit survives kill -9 and power cuts, and every read-modify-write runs in a BEGIN IMMEDIATE transaction so
 * several processes sharing the file see the same conditional semantics as DynamoDB. Writes asked
 * for together share one commit (GroupCommit); each resolves only once committed.
 */
export class SqliteStateStore implements StateStore {
  readonly file: string;
  private readonly db: DatabaseSync;
  private readonly now: () => Date;
  private readonly group: GroupCommit;
  /** Counter bumps waiting for the next group commit, added up per run. */
  private readonly pendingCounters = new Map<string, { sum: Partial<RunCounters>; written: Promise<void> }>();
  private readonly sql: Record<
    | 'asset'
    | 'putAsset'
    | 'assetsAfter'
    | 'lease'
    | 'putLease'
    | 'dropLease'
    | 'dropLeaseOf'
    | 'run'
    | 'putRun'
    | 'latestRun'
    | 'byAssetId',
    StatementSync
  >;

  constructor(root: string, options: SqliteStateStoreOptions = {}) {
    this.file = options.file ?? join(root, LOCAL_CONTROL_DIR, STATE_FILE);
    this.now = options.now ?? (() => new Date());
    // NORMAL: the group commit fsyncs the log itself, off the event loop.
    this.db = openDatabase(this.file, { synchronous: 'NORMAL' });
    this.group = new GroupCommit(this.db, this.file);
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS assets (
        id TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        status TEXT NOT NULL,
        state TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS leases (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        version INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS runs (
        run_id TEXT PRIMARY KEY,
        started_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        record TEXT NOT NULL
      );
      -- Renames: a new public id with a known asset_id is copied, not downloaded.
      CREATE INDEX IF NOT EXISTS assets_by_asset_id ON assets (json_extract(state, '$.assetId'));
    `);
    this.sql = {
      asset: this.db.prepare('SELECT * FROM assets WHERE id = ?'),
      putAsset: this.db.prepare(
        `INSERT INTO assets (id, version, status, state) VALUES (?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET version = excluded.version, status = excluded.status, state = excluded.state`,
      ),
      assetsAfter: this.db.prepare('SELECT * FROM assets WHERE id > ? ORDER BY id LIMIT ?'),
      lease: this.db.prepare('SELECT owner, expires_at FROM leases WHERE id = ?'),
      putLease: this.db.prepare(
        `INSERT INTO leases (id, owner, version, expires_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, version = excluded.version, expires_at = excluded.expires_at`,
      ),
      dropLease: this.db.prepare('DELETE FROM leases WHERE id = ? AND version <= ?'),
      dropLeaseOf: this.db.prepare('DELETE FROM leases WHERE id = ? AND owner = ?'),
      run: this.db.prepare('SELECT * FROM runs WHERE run_id = ?'),
      putRun: this.db.prepare(
        `INSERT INTO runs (run_id, started_at, updated_at, record) VALUES (?, ?, ?, ?)
         ON CONFLICT (run_id) DO UPDATE SET started_at = excluded.started_at,
           updated_at = excluded.updated_at, record = excluded.record`,
      ),
      // Run ids start with their start time, so the greatest id is the latest run.
      latestRun: this.db.prepare('SELECT * FROM runs ORDER BY run_id DESC LIMIT 1'),
      byAssetId: this.db.prepare(`SELECT * FROM assets WHERE json_extract(state, '$.assetId') = ?`),
    };
  }

  close(): void {
    if (!this.db.isOpen) return;
    this.group.flush();
    this.db.close();
  }

  /** Commits made and writes they carried since this store opened. */
  get commitStats(): { commits: number; writes: number; syncs: number } {
    return { ...this.group.stats };
  }

  async getMany(ids: string[]): Promise<Map<string, AssetState>> {
    const found = new Map<string, AssetState>();
    // One indexed lookup per id inside a read transaction: any number of ids, one consistent snapshot.
    this.db.exec('BEGIN');
    try {
      for (const id of new Set(ids)) {
        const row = this.sql.asset.get(id) as AssetRow | undefined;
        if (row) found.set(id, parseState(row));
      }
    } finally {
      this.db.exec('COMMIT');
    }
    return found;
  }

  async recordReplicated(state: AssetState): Promise<boolean> {
    return this.group.run(() => {
      const existing = this.readAsset(state.id);
      if (existing && existing.version > state.version) return false;
      // A second record of the same copy (a redelivered message) keeps the first one.
      if (existing?.status === 'replicated' && existing.version === state.version) return false;
      const next: AssetState = { ...state };
      if (existing?.failedVersion !== undefined && existing.failedVersion > state.version) {
        next.failedVersion = existing.failedVersion;
      } else {
        delete next.failedVersion;
      }
      this.writeAsset(next);
      this.sql.dropLease.run(state.id, state.version);
      return true;
    });
  }

  async acquireLease(
    ref: AssetRef,
    version: number,
    owner: string,
    ttlMs: number,
  ): Promise<'acquired' | 'done' | 'busy'> {
    const id = assetIdOf(ref);
    const now = this.now().getTime();
    if (ttlMs <= 0) {
      // A lease that lasts no time keeps nobody out (a backup, whose folder lock already does):
      // none is written, and the answer needs no commit.
      const existing = this.readAsset(id);
      return existing?.status === 'replicated' && existing.version >= version ? 'done' : 'acquired';
    }
    return this.group.run(
      () => {
        const existing = this.readAsset(id);
        if (existing?.status === 'replicated' && existing.version >= version) return 'done';
        const lease = this.sql.lease.get(id) as LeaseRow | undefined;
        if (lease && lease.owner !== owner && lease.expires_at > now) return 'busy';
        this.sql.putLease.run(id, owner, version, now + ttlMs);
        return 'acquired';
        // A lease only keeps two live copies apart: one lost to a power cut guards nothing.
      },
      { durable: false },
    );
  }

  async recordFailure(
    ref: AssetRef & { version: number; bytes: number; objectKey: string },
    error: string,
    owner?: string,
    details: FailureDetails = {},
  ): Promise<void> {
    const id = assetIdOf(ref);
    const lastError = error.slice(0, MAX_ERROR_CHARS);
    const errors = details.errors?.length ? { errors: details.errors } : {};
    await this.group.run(() => {
      if (owner !== undefined) this.sql.dropLeaseOf.run(id, owner);
      const existing = this.readAsset(id);
      if (existing && existing.version > ref.version) return;
      if (existing?.status === 'replicated') {
        // A late failure of the version we hold changes nothing; a newer one is noted beside the copy.
        if (ref.version === existing.version) return;
        const { quarantinedVersion: _v, quarantinedBytes: _b, ...held } = existing;
        // Quarantine this version beside the copy, or (a failure that may pass) lift an earlier quarantine.
        this.writeAsset({
          ...held,
          attempts: existing.attempts + 1,
          lastError,
          failedVersion: ref.version,
          ...errors,
          ...(details.quarantine ? { quarantinedVersion: ref.version, quarantinedBytes: ref.bytes } : {}),
        });
        return;
      }
      this.writeAsset({
        id,
        resourceType: ref.resourceType,
        deliveryType: ref.deliveryType,
        publicId: ref.publicId,
        assetId: existing?.assetId,
        version: ref.version,
        bytes: ref.bytes,
        objectKey: ref.objectKey,
        status: details.quarantine ? 'quarantined' : 'failed',
        lastSeenRun: existing?.lastSeenRun,
        attempts: (existing?.attempts ?? 0) + 1,
        lastError,
        ...(errors.errors ? errors : existing?.errors ? { errors: existing.errors } : {}),
      });
    });
  }

  async markDeleted(ids: string[], at: string): Promise<void> {
    await this.group.run(() => {
      for (const id of new Set(ids)) {
        const existing = this.readAsset(id);
        if (!existing || existing.status === 'deleted-at-source') continue;
        this.writeAsset({ ...existing, status: 'deleted-at-source', deletedAt: at });
      }
    });
  }

  async findByAssetId(assetId: string): Promise<AssetState[]> {
    if (!assetId) return [];
    return (this.sql.byAssetId.all(assetId) as unknown as AssetRow[]).map(parseState);
  }

  async markRenamed(id: string, assetId: string, newId: string, at: string): Promise<void> {
    await this.group.run(() => {
      const existing = this.readAsset(id);
      if (!existing || existing.assetId !== assetId || existing.status === 'renamed') return;
      this.writeAsset({ ...existing, status: 'renamed', renamedTo: newId, deletedAt: at });
    });
  }

  async checkEtag(
    ref: AssetRef,
    version: number,
    etag: string,
  ): Promise<'verified' | 'mismatch' | 'unchanged'> {
    const id = assetIdOf(ref);
    return this.group.run(() => {
      const existing = this.readAsset(id);
      if (existing?.status !== 'replicated' || existing.version !== version) return 'unchanged';
      if (existing.md5 === etag) {
        if (existing.verifiedBy !== 'md5') this.writeAsset({ ...existing, verifiedBy: 'md5' });
        return 'verified';
      }
      this.writeAsset({ ...existing, status: 'failed', lastError: etagMismatch(existing.md5, etag) });
      return 'mismatch';
    });
  }

  async *listAssets(options: { after?: string } = {}): AsyncIterable<AssetState> {
    let after = options.after ?? '';
    for (;;) {
      const rows = this.sql.assetsAfter.all(after, LIST_PAGE) as unknown as AssetRow[];
      for (const row of rows) yield parseState(row);
      const last = rows.at(-1);
      if (!last || rows.length < LIST_PAGE) return;
      after = last.id;
    }
  }

  async getRun(runId: string): Promise<RunRecord | undefined> {
    const row = this.sql.run.get(runId) as RunRow | undefined;
    return row ? (JSON.parse(row.record) as RunRecord) : undefined;
  }

  async putRun(run: RunRecord, expectedUpdatedAt?: string): Promise<void> {
    await this.group.run(() => {
      const row = this.sql.run.get(run.runId) as RunRow | undefined;
      if (expectedUpdatedAt !== undefined && row?.updated_at !== expectedUpdatedAt) {
        throw new StaleRunError(run.runId);
      }
      const stored = row ? (JSON.parse(row.record) as RunRecord) : undefined;
      // Counters only grow: a checkpoint never undoes what addToRunCounters added meanwhile.
      const counters = { ...run.counters };
      for (const name of Object.keys(counters) as (keyof RunCounters)[]) {
        counters[name] = Math.max(counters[name], stored?.counters[name] ?? 0);
      }
      const record: RunRecord = { ...run, counters };
      this.sql.putRun.run(run.runId, run.startedAt, run.updatedAt, JSON.stringify(record));
    });
  }

  async latestRun(): Promise<RunRecord | undefined> {
    const row = this.sql.latestRun.get() as RunRow | undefined;
    return row ? (JSON.parse(row.record) as RunRecord) : undefined;
  }

  /**
   * Counter bumps asked for before the next group commit are added up and written once: every
   * copied asset bumps its run's counters, and each write re-reads and re-writes the run record.
   */
  async addToRunCounters(runId: string, delta: Partial<RunCounters>): Promise<void> {
    let pending = this.pendingCounters.get(runId);
    if (!pending) {
      const sum: Partial<RunCounters> = {};
      const written = this.group.run(
        () => {
          // Bumps asked for from here on go into the next commit.
          this.pendingCounters.delete(runId);
          this.writeRunCounters(runId, sum);
        },
        // Counters report progress; the state of each asset is what must reach the disk first.
        { durable: false },
      );
      pending = { sum, written };
      this.pendingCounters.set(runId, pending);
    }
    addCounters(pending.sum, delta);
    await pending.written;
  }

  private writeRunCounters(runId: string, delta: Partial<RunCounters>): void {
    const row = this.sql.run.get(runId) as RunRow | undefined;
    if (!row) throw new Error(`run ${runId} does not exist`);
    const record = JSON.parse(row.record) as RunRecord;
    addCounters(record.counters, delta);
    // updatedAt is the optimistic lock of checkpoints; counter bumps must not break it.
    this.sql.putRun.run(runId, record.startedAt, row.updated_at, JSON.stringify(record));
  }

  private readAsset(id: string): AssetState | undefined {
    const row = this.sql.asset.get(id) as AssetRow | undefined;
    return row ? parseState(row) : undefined;
  }

  private writeAsset(state: AssetState): void {
    this.sql.putAsset.run(state.id, state.version, state.status, JSON.stringify(state));
  }
}

/** Adds each counter of `delta` into `into`. */
function addCounters(into: Partial<RunCounters>, delta: Partial<RunCounters>): void {
  for (const [name, value] of Object.entries(delta) as [keyof RunCounters, number | undefined][]) {
    if (value) into[name] = (into[name] ?? 0) + value;
  }
}

function parseState(row: AssetRow): AssetState {
  return JSON.parse(row.state) as AssetState;
}

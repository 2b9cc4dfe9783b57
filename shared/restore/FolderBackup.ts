import { existsSync, createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import { LOCAL_CONTROL_DIR, META, MANIFESTS_PREFIX } from '../constants.js';
import { ConfigError } from '../errors.js';
import type { ManifestEntry } from '../engine/manifest.js';
import { readManifest } from '../engine/manifest.js';
import { LocalObjectStore, OBJECT_INDEX_FILE } from '../local/LocalObjectStore.js';
import { resolveInside } from '../local/safePath.js';
import { PULL_INDEX_FILE, PullIndex } from '../pull/PullIndex.js';
import { finalManifests } from './manifests.js';
import type { BackupManifest, BackupReader, LocatedCopy } from './types.js';

/**
 * A folder written by `npm run backup` (its object index says where each key's file is, with the MD5
 * and version) or by `npm run pull` (its pull index says where each key's file is, with the MD5).
 * Read only: nothing in the folder is changed.
 */
export class FolderBackup implements BackupReader {
  readonly description: string;
  private readonly store?: LocalObjectStore;
  private readonly pulled?: PullIndex;

  private constructor(
    private readonly root: string,
    kind: 'backup' | 'pull',
  ) {
    this.description = root;
    if (kind === 'backup') this.store = new LocalObjectStore(root);
    else this.pulled = new PullIndex(root);
  }

  static async open(dir: string): Promise<FolderBackup> {
    const root = resolve(dir);
    const info = await stat(root).catch(() => undefined);
    if (!info?.isDirectory()) throw new ConfigError(`--from ${dir}: no such folder.`);
    const control = join(root, LOCAL_CONTROL_DIR);
    if (existsSync(join(control, OBJECT_INDEX_FILE))) return new FolderBackup(root, 'backup');
    if (existsSync(join(control, PULL_INDEX_FILE))) return new FolderBackup(root, 'pull');
    throw new ConfigError(
      `--from ${dir} holds no backup (no ${LOCAL_CONTROL_DIR}/ index): name a folder written by npm run backup or npm run pull.`,
    );
  }

  async manifests(): Promise<BackupManifest[]> {
    const dir = join(this.root, MANIFESTS_PREFIX);
    const runs = await readdir(dir).catch(() => [] as string[]);
    return finalManifests(runs.map((run) => `${MANIFESTS_PREFIX}${run}/manifest.jsonl.gz`)).filter((m) =>
      existsSync(join(this.root, m.key)),
    );
  }

  async *readManifest(key: string): AsyncIterable<ManifestEntry> {
    if (this.store) {
      yield* readManifest(this.store, key);
      return;
    }
    const input = createReadStream(resolveInside(this.root, key)).pipe(createGunzip());
    for await (const line of createInterface({ input, crlfDelay: Infinity })) {
      if (line.trim() !== '') yield JSON.parse(line) as ManifestEntry;
    }
  }

  async locate(objectKey: string): Promise<LocatedCopy | undefined> {
    if (this.store) {
      const head = await this.store.head(objectKey);
      if (!head) return undefined;
      const version = Number(head.metadata[META.version]);
      return {
        bytes: head.bytes,
        md5: head.md5,
        ...(Number.isFinite(version) && version > 0 && { version }),
      };
    }
    const record = this.pulled?.get(objectKey);
    if (!record) return undefined;
    const info = await stat(resolveInside(this.root, record.localPath)).catch(() => undefined);
    if (!info?.isFile()) return undefined;
    return { bytes: info.size, md5: record.md5 };
  }

  async open(objectKey: string): Promise<Readable> {
    if (this.store) return this.store.get(objectKey);
    const record = this.pulled?.get(objectKey);
    if (!record) throw new ConfigError(`${objectKey} is not in the pulled folder`);
    return createReadStream(resolveInside(this.root, record.localPath));
  }

  close(): void {
    this.store?.close();
    this.pulled?.close();
  }
}

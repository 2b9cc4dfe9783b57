import { foldPath, hashedRelativePath, placeKey } from '../local/safePath.js';
import type { PulledRecord } from './PullIndex.js';

/** One object as a ListObjectsV2 page describes it. */
export interface ListedObject {
  key: string;
  size: number;
  etag: string;
  lastModified?: Date;
  storageClass?: string;
}

/** The local file at an object's path, as one lstat saw it (regular files only). */
export interface LocalFile {
  size: number;
  mtimeMs: number;
}

/**
 * What to do with one listed object:
 * - skip: the index says this exact ETag was verified into this exact local file;
 * - verify: the same, but `--verify` asked to re-hash it;
 * - adopt: a file of the right size is there but unknown (or touched): hash it before fetching;
 * - archived: not readable until restored (GLACIER, DEEP_ARCHIVE);
 * - download: fetch it;
 * - folder-marker: a zero-byte `name/` object some consoles create; nothing to write.
 */
export type PullAction = 'skip' | 'verify' | 'adopt' | 'archived' | 'download' | 'folder-marker';

/** Storage classes that must be restored before a GET; GLACIER_IR is read directly. */
const ARCHIVED_CLASSES = new Set(['GLACIER', 'DEEP_ARCHIVE']);

export function isArchived(storageClass: string | undefined): boolean {
  return storageClass !== undefined && ARCHIVED_CLASSES.has(storageClass);
}

/** Decides from the listing, the index row and one lstat: no HEAD, no hashing for unchanged files. */
export function decide(
  listed: ListedObject,
  record: PulledRecord | undefined,
  local: LocalFile | undefined,
  options: { verify?: boolean } = {},
): PullAction {
  if (listed.key.endsWith('/') && listed.size === 0) return 'folder-marker';
  const unchanged =
    record !== undefined &&
    local !== undefined &&
    record.etag === listed.etag &&
    record.size === listed.size &&
    record.localSize === local.size &&
    record.localMtimeMs === local.mtimeMs;
  if (unchanged) return options.verify ? 'verify' : 'skip';
  if (local !== undefined && local.size === listed.size) return 'adopt';
  if (isArchived(listed.storageClass)) return 'archived';
  return 'download';
}

/** Where each key goes, with the keys that had to move under `_unsafe/` and why. */
export interface Placement {
  relative: string;
  unsafeReason?: string;
}

/**
 * Places every key of a (sorted) listing: unsafe keys go to `_unsafe/<sha256>`, and so does a
 * key that would share a name with an earlier one on a case-insensitive disk. A folder beats a
 * file of its name, whatever the order: a key whose name another key needs as a folder goes to
 * `_unsafe/` too (as `npm run backup` decides), so every asset lands somewhere.
 */
export class Placer {
  private readonly files = new Map<string, string>();
  private readonly dirs = new Set<string>();
  /** Folders that some key of the whole listing needs. */
  private readonly neededDirs = new Set<string>();

  constructor(allKeys: Iterable<string> = []) {
    for (const key of allKeys) {
      const natural = placeKey(key);
      if (natural.unsafeReason !== undefined) continue;
      for (const parent of parentsOf(foldPath(natural.relative))) this.neededDirs.add(parent);
    }
  }

  place(key: string): Placement {
    const natural = placeKey(key);
    if (natural.unsafeReason !== undefined) return natural;
    const fold = foldPath(natural.relative);
    if (this.neededDirs.has(fold)) {
      return { relative: hashedRelativePath(key), unsafeReason: 'other assets need its name as a folder' };
    }
    const parents = parentsOf(fold);
    const clash =
      this.files.get(fold) ??
      (this.dirs.has(fold) ? 'a folder of the same name' : undefined) ??
      parents.map((parent) => this.files.get(parent)).find((owner) => owner !== undefined);
    if (clash !== undefined) {
      return { relative: hashedRelativePath(key), unsafeReason: `its path collides with ${clash}` };
    }
    this.files.set(fold, key);
    for (const parent of parents) this.dirs.add(parent);
    return natural;
  }
}

function parentsOf(path: string): string[] {
  const segments = path.split('/');
  return segments.slice(0, -1).map((_, i) => segments.slice(0, i + 1).join('/'));
}

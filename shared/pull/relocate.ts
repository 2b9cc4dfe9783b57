import { lstat, rename } from 'node:fs/promises';
import { prepareParentDirs, resolveInside } from '../local/safePath.js';
import type { PullIndex, PulledRecord } from './PullIndex.js';

/**
 * Moves a file an earlier pull wrote to where the current listing places its key (a file whose
 * name a folder now needs goes under `_unsafe/`): no download, bytes and times kept. Returns the
 * updated record, or undefined when the file is not the verified one or the move cannot be made.
 */
export async function relocatePulled(
  root: string,
  index: PullIndex,
  record: PulledRecord,
  relative: string,
): Promise<PulledRecord | undefined> {
  try {
    const from = resolveInside(root, record.localPath);
    const info = await lstat(from);
    if (!info.isFile() || info.size !== record.localSize || info.mtimeMs !== record.localMtimeMs)
      return undefined;
    const to = resolveInside(root, relative);
    if (
      await lstat(to).then(
        () => true,
        () => false,
      )
    )
      return undefined;
    await prepareParentDirs(root, relative);
    await rename(from, to);
    const moved = { ...record, localPath: relative };
    index.put(moved);
    return moved;
  } catch {
    // A parent that is now a file, a folder in the way: the key is fetched to its place instead.
    return undefined;
  }
}

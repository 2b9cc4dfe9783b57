import { createHash, type Hash } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { lstat, open, rename, unlink, utimes } from 'node:fs/promises';
import { dirname } from 'node:path';
import { openNoFollow, prepareParentDirs, resolveInside, UnsafePathError } from './safePath.js';

const READ_CHUNK = 1024 * 1024;

/** Flushes a folder's entry list to disk so a rename inside it survives a power cut (best effort). */
export async function fsyncDir(path: string): Promise<void> {
  const handle = await open(path, fsConstants.O_RDONLY).catch(() => undefined);
  if (!handle) return;
  try {
    await handle.sync();
  } catch {
    // Some platforms (Windows) cannot fsync a folder; the rename is still atomic.
  } finally {
    await handle.close();
  }
}

/**
 * Moves a finished, fsynced file from the control folder to its final place in `root`:
 * parents are created without crossing symlinks, the time is set first, then one rename, then
 * the folder is fsynced so the rename survives a power cut.
 */
export async function commitFile(
  tempPath: string,
  root: string,
  relativePath: string,
  mtime?: Date,
): Promise<string> {
  const finalPath = await moveIntoPlace(tempPath, root, relativePath, mtime);
  await fsyncDir(dirname(finalPath));
  return finalPath;
}

/**
 * commitFile without the folder's fsync, for callers that sync many folders together afterwards;
 * `checkedDirs` (folders this caller checked a moment ago) spares looking at them again.
 */
export async function moveIntoPlace(
  tempPath: string,
  root: string,
  relativePath: string,
  mtime?: Date,
  checkedDirs?: Set<string>,
): Promise<string> {
  const finalPath = resolveInside(root, relativePath);
  await prepareParentDirs(root, relativePath, checkedDirs);
  if (mtime && !Number.isNaN(mtime.getTime())) await utimes(tempPath, mtime, mtime);
  try {
    await rename(tempPath, finalPath);
  } catch (error) {
    // rename(2) refuses to replace a folder with a file (EISDIR; other codes on other systems).
    if ((await lstat(finalPath).catch(() => undefined))?.isDirectory())
      throw new UnsafePathError(`${finalPath} is a folder, so the file cannot go there`, { cause: error });
    throw error;
  }
  return finalPath;
}

/** Hashes a file's first `length` bytes (all when undefined) into `hash`, without following symlinks. */
export async function hashFile(
  path: string,
  hash: Hash = createHash('md5'),
  options: { length?: number; onBytes?: (n: number) => void; signal?: AbortSignal } = {},
): Promise<{ hash: Hash; bytes: number }> {
  const handle = await openNoFollow(path);
  try {
    const buffer = Buffer.allocUnsafe(READ_CHUNK);
    let total = 0;
    for (;;) {
      options.signal?.throwIfAborted();
      const want = options.length === undefined ? READ_CHUNK : Math.min(READ_CHUNK, options.length - total);
      if (want <= 0) break;
      const { bytesRead } = await handle.read(buffer, 0, want, total);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      total += bytesRead;
      options.onBytes?.(bytesRead);
    }
    return { hash, bytes: total };
  } finally {
    await handle.close();
  }
}

/** Removes a file, ignoring one that is already gone. */
export async function removeFile(path: string): Promise<void> {
  await unlink(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
}

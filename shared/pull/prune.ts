import { lstat, readdir, rmdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { LOCAL_CONTROL_DIR } from '../constants.js';
import { foldPath, resolveInside } from '../local/safePath.js';

/**
 * Finds the regular files under `root` that no listed key maps to. Never descends into the
 * control folder or through a symlink (symlinks and other special files are left alone), and
 * keeps any file whose name matches an expected one on a case- or normalisation-insensitive disk.
 * `inScope` limits the search (a `--prefix` pull only prunes what that prefix covers).
 */
export async function findStaleFiles(
  root: string,
  expected: Iterable<string>,
  inScope: (relative: string) => boolean = () => true,
): Promise<string[]> {
  const keep = new Set<string>();
  for (const relative of expected) keep.add(foldPath(relative));
  const stale: string[] = [];
  const walk = async (dir: string, prefix: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      // readdir on macOS may hand back decomposed names; compare in NFC.
      const relative = `${prefix}${entry.name.normalize('NFC')}`;
      if (prefix === '' && entry.name === LOCAL_CONTROL_DIR) continue;
      if (entry.isDirectory()) {
        await walk(join(dir, entry.name), `${relative}/`);
      } else if (entry.isFile() && inScope(relative) && !keep.has(foldPath(relative))) {
        stale.push(`${prefix}${entry.name}`);
      }
    }
  };
  await walk(root, '');
  return stale;
}

/** Deletes stale files (each re-checked to be a regular file inside `root`) and then folders left empty. */
export async function removeStaleFiles(root: string, relatives: string[]): Promise<string[]> {
  const removed: string[] = [];
  const dirs = new Set<string>();
  for (const relative of relatives) {
    const path = resolveInside(root, relative);
    const info = await lstat(path).catch(() => undefined);
    if (!info?.isFile()) continue;
    await unlink(path);
    removed.push(relative);
    const segments = relative.split('/');
    for (let i = segments.length - 1; i > 0; i--) dirs.add(segments.slice(0, i).join('/'));
  }
  // Deepest first, so a folder emptied by its children's removal goes too; rmdir refuses non-empty ones.
  for (const dir of [...dirs].sort((a, b) => b.split('/').length - a.split('/').length)) {
    if (dir === LOCAL_CONTROL_DIR) continue;
    await rmdir(resolveInside(root, dir)).catch(() => undefined);
  }
  return removed;
}

import { lstatSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeObjectKey } from '../keys.js';
import { resolveInside, unsafeKeyReason, UNSAFE_DIR, UnsafePathError } from './safePath.js';

/** The index of `_unsafe/`: which asset each hashed file is, for people (tab-separated, one line each). */
export const UNSAFE_INDEX = `${UNSAFE_DIR}/INDEX.tsv`;

const HEADER = ['file', 'asset', 'why', 'key'];

/** One file under `_unsafe/`: its path in the destination and the object key it holds. */
export interface UnsafeEntry {
  path: string;
  key: string;
}

/** Keeps tabs and line breaks from splitting a TSV cell; ids may hold any character. */
function cell(text: string): string {
  return text.replace(
    /[\t\n\r\\]/gu,
    (c) => ({ '\t': '\\t', '\n': '\\n', '\r': '\\r', '\\': '\\\\' })[c] ?? c,
  );
}

/** Why a key was saved under `_unsafe/`, from the key alone (backup and pull write the same index). */
function whyUnsafe(key: string): string {
  return unsafeKeyReason(key) ?? 'its name clashes with another asset (a folder, or a case or Unicode twin)';
}

/**
 * Writes `_unsafe/INDEX.tsv` beside the hashed files (sorted by file, so a backup and a pull of
 * the same assets write the same bytes), or removes it when nothing is there.
 */
export function writeUnsafeIndex(root: string, entries: Iterable<UnsafeEntry>): void {
  const rows = [...entries]
    .filter((entry) => entry.path.startsWith(`${UNSAFE_DIR}/`) && entry.path !== UNSAFE_INDEX)
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const target = resolveInside(root, UNSAFE_INDEX);
  if (rows.length === 0) {
    rmSync(target, { force: true });
    return;
  }
  const lines = [HEADER.join('\t')];
  for (const { path, key } of rows) {
    const decoded = decodeObjectKey(key);
    lines.push(
      [
        path.slice(UNSAFE_DIR.length + 1),
        // `<resource type>/<delivery type>/<public id>[.<format>]`; a hashed key no longer holds the id.
        decoded?.publicIdWithExtension === undefined
          ? ''
          : `${decoded.resourceType}/${decoded.deliveryType}/${decoded.publicIdWithExtension}`,
        whyUnsafe(key),
        key,
      ]
        .map(cell)
        .join('\t'),
    );
  }
  // `_unsafe` sits right in the destination: a real folder, never a link planted to lead elsewhere.
  const folder = join(root, UNSAFE_DIR);
  const info = lstatSync(folder, { throwIfNoEntry: false });
  if (!info) mkdirSync(folder);
  else if (!info.isDirectory()) throw new UnsafePathError(`${folder} is not a plain folder`);
  const temp = `${target}.${process.pid}.new`;
  writeFileSync(temp, `${lines.join('\n')}\n`);
  renameSync(temp, target);
}

import { createHash } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { lstat, mkdir, open, type FileHandle } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import { LOCAL_CONTROL_DIR } from '../constants.js';
import { PermanentAssetError } from '../errors.js';

/** Folder (inside a destination) holding keys that cannot be file paths as they are. */
export const UNSAFE_DIR = '_unsafe';
/** Longest file or folder name most file systems accept (ext4, APFS, NTFS), in UTF-8 bytes. */
export const MAX_SEGMENT_BYTES = 255;
/** Longest relative path we write: leaves room for the destination under macOS's 1,024-byte PATH_MAX. */
export const MAX_RELATIVE_PATH_BYTES = 800;

// Controls, and what Windows and exFAT reject; backslash is a separator there.
// eslint-disable-next-line no-control-regex
const FORBIDDEN_CHARS = /[\u0000-\u001f\u007f\\:*?"<>|]/u;
const WINDOWS_DEVICE = /^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$/iu;
const SAFE_EXTENSION = /\.([A-Za-z0-9]{1,10})$/u;
const RESERVED_TOP = new Set([LOCAL_CONTROL_DIR.toLowerCase(), UNSAFE_DIR.toLowerCase()]);

/** Where a key lives inside a destination folder. */
export interface KeyPlacement {
  /** Relative path with `/` separators, never empty, absolute or climbing out. */
  relative: string;
  /** Why the key could not be used as it is; set when it was moved under `_unsafe/`. */
  unsafeReason?: string;
}

/** A path that would leave the destination, cross a symlink or collide with a folder. */
export class UnsafePathError extends PermanentAssetError {}

/**
 * Says why `key` cannot be used as a relative file path on every file system we care about,
 * or undefined when it can. Keys built by `objectKeyFor` always pass unless a segment is too long.
 */
export function unsafeKeyReason(key: string): string | undefined {
  if (key.length === 0) return 'empty key';
  if (key.startsWith('/') || isAbsolute(key)) return 'absolute path';
  const forbidden = FORBIDDEN_CHARS.exec(key);
  if (forbidden) return `contains ${describeChar(forbidden[0])}`;
  if (Buffer.byteLength(key, 'utf8') > MAX_RELATIVE_PATH_BYTES)
    return `longer than ${MAX_RELATIVE_PATH_BYTES} bytes`;
  const segments = key.split('/');
  if (RESERVED_TOP.has((segments[0] ?? '').toLowerCase()))
    return `starts with the reserved folder ${segments[0]}`;
  for (const segment of segments) {
    if (segment === '') return 'empty path segment';
    if (segment === '.' || segment === '..') return `'${segment}' path segment`;
    if (Buffer.byteLength(segment, 'utf8') > MAX_SEGMENT_BYTES)
      return `a segment longer than ${MAX_SEGMENT_BYTES} bytes`;
    if (/[. ]$/u.test(segment)) return 'a segment ending in a dot or space';
    if (WINDOWS_DEVICE.test(segment)) return `'${segment}' is a reserved device name on Windows`;
  }
  return undefined;
}

function describeChar(ch: string): string {
  const code = ch.codePointAt(0) ?? 0;
  return code < 0x20 || code === 0x7f
    ? `control character U+${code.toString(16).padStart(4, '0')}`
    : `'${ch}'`;
}

/** `_unsafe/<sha256 of key>`, keeping a plain extension so the file still opens in the right app. */
export function hashedRelativePath(key: string): string {
  const digest = createHash('sha256').update(key, 'utf8').digest('hex');
  const ext = SAFE_EXTENSION.exec(key.slice(key.lastIndexOf('/') + 1))?.[0] ?? '';
  return `${UNSAFE_DIR}/${digest}${ext.toLowerCase()}`;
}

/** Maps a key to its place in a destination: the key itself when safe, else a hashed name. */
export function placeKey(key: string): KeyPlacement {
  const reason = unsafeKeyReason(key);
  return reason === undefined
    ? { relative: key }
    : { relative: hashedRelativePath(key), unsafeReason: reason };
}

/** The form under which two paths name the same file on case- and normalisation-insensitive disks (macOS, Windows). */
export function foldPath(relativePath: string): string {
  return relativePath.normalize('NFC').toLowerCase();
}

/** Joins a placement to `root`, refusing (never trusting) anything that would land outside it. */
export function resolveInside(root: string, relativePath: string): string {
  const full = join(root, ...relativePath.split('/'));
  const back = relative(root, full);
  if (back === '' || back === '..' || back.startsWith(`..${sep}`) || isAbsolute(back)) {
    throw new UnsafePathError(`refusing a path outside the destination: ${JSON.stringify(relativePath)}`);
  }
  return full;
}

/**
 * Creates the folders above `relativePath` one at a time, refusing any that is a symlink or a
 * file, so a planted link can never redirect a write outside `root`.
 */
export async function prepareParentDirs(
  root: string,
  relativePath: string,
  /** Folders already checked (or created) by this caller a moment ago: not looked at again. */
  checked?: Set<string>,
): Promise<void> {
  const segments = relativePath.split('/').slice(0, -1);
  let current = root;
  for (const segment of segments) {
    current = join(current, segment);
    if (checked?.has(current)) continue;
    let info = await lstat(current).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    if (!info) {
      await mkdir(current).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') throw error;
      });
      info = await lstat(current);
    }
    if (info.isSymbolicLink())
      throw new UnsafePathError(`refusing to write through the symbolic link ${current}`);
    if (!info.isDirectory())
      throw new UnsafePathError(`${current} is a file, so ${relativePath} cannot be created below it`);
    checked?.add(current);
  }
}

/** Throws unless every folder between `root` and the file is a real folder (no symlink on the way). */
export async function assertNoSymlinkParents(root: string, relativePath: string): Promise<void> {
  let current = root;
  for (const segment of relativePath.split('/').slice(0, -1)) {
    current = join(current, segment);
    const info = await lstat(current);
    if (info.isSymbolicLink() || !info.isDirectory())
      throw new UnsafePathError(`refusing to read through ${current}: not a plain folder`);
  }
}

// O_NOFOLLOW does not exist on Windows; there the parent check above is the guard.
const NOFOLLOW = fsConstants.O_NOFOLLOW ?? 0;

/** Opens an existing file for reading without following a symlink in its last segment. */
export async function openNoFollow(path: string): Promise<FileHandle> {
  return open(path, fsConstants.O_RDONLY | NOFOLLOW);
}

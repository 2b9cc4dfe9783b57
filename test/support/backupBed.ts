import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync } from 'node:fs';
import { lstat, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BackupOptions } from '../../shared/backup/runBackup.js';
import type { CliStreams } from '../../shared/cli/args.js';
import { DEFAULT_SETTINGS, parseCloudinaryUrl, type EngineSettings } from '../../shared/config.js';
import { LOCAL_CONTROL_DIR, MANIFESTS_PREFIX } from '../../shared/constants.js';
import { objectKeyFor } from '../../shared/keys.js';
import { UNSAFE_DIR } from '../../shared/local/safePath.js';
import { UNSAFE_INDEX } from '../../shared/local/unsafeIndex.js';
import { Placer } from '../../shared/pull/decide.js';
import type { CloudinaryDouble, DoubleAsset, Library } from '../double/index.js';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));

/** Small originals: a library of a few hundred assets copies in a second or two. */
export const TINY_SIZES = {
  image: [2_000, 30_000],
  video: [20_000, 80_000],
  raw: [500, 8_000],
} as const;

const made: string[] = [];

/** A new empty folder under the system temp folder, removed by `removeFolders`. */
export function freshFolder(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `backup-${name}-`));
  made.push(dir);
  return dir;
}

export async function removeFolders(): Promise<void> {
  for (const dir of made.splice(0)) await rm(dir, { recursive: true, force: true });
}

/** Engine settings that keep a test fast: no retry back-off, two tries, short timeouts. */
export function fastSettings(overrides: Partial<EngineSettings> = {}): EngineSettings {
  return {
    ...DEFAULT_SETTINGS,
    retryBaseSeconds: 0,
    maxReceives: 2,
    adminTimeoutMs: 5_000,
    idleTimeoutMs: 5_000,
    // Every run lists everything (deletions on the next run); tests of incremental runs ask for them.
    reconcileEveryDays: 0,
    ...overrides,
  };
}

/** The environment `npm run backup` reads, pointed at the double, with the same fast settings. */
export function backupEnv(double: CloudinaryDouble, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    CLOUDINARY_URL: double.cloudinaryUrl,
    RETRY_BASE_SECONDS: '0',
    MAX_RECEIVES: '2',
    ADMIN_TIMEOUT_MS: '5000',
    IDLE_TIMEOUT_MS: '5000',
    RECONCILE_EVERY_DAYS: '0',
    ...extra,
  };
}

/** runBackup options against the double, on the double's clock. */
export function backupOptions(
  double: CloudinaryDouble,
  dest: string,
  overrides: Partial<BackupOptions> = {},
): BackupOptions {
  return {
    dest,
    credentials: parseCloudinaryUrl(double.cloudinaryUrl),
    settings: fastSettings(),
    now: () => double.clock.now(),
    ...overrides,
  };
}

/** Captured stdout and stderr, as a terminal (`isTTY`) or a pipe. */
export function captureStreams(isTTY = false): {
  streams: CliStreams;
  out: () => string;
  err: () => string;
} {
  const out: string[] = [];
  const err: string[] = [];
  const stdout = {
    write: (chunk: string | Uint8Array) => out.push(String(chunk)) > 0,
    isTTY,
    columns: 120,
  } as unknown as NodeJS.WritableStream;
  const stderr = {
    write: (chunk: string | Uint8Array) => err.push(String(chunk)) > 0,
  } as unknown as NodeJS.WritableStream;
  return { streams: { stdout, stderr }, out: () => out.join(''), err: () => err.join('') };
}

export function keyOf(asset: DoubleAsset): string {
  return objectKeyFor({
    resourceType: asset.resource_type,
    deliveryType: asset.type,
    publicId: asset.public_id,
    format: asset.format,
  });
}

/** Bytes the double has served: delivery and download API together. */
export function servedBytes(double: CloudinaryDouble): number {
  return double.counters.deliveryBytes + double.counters.downloadBytes;
}

export function md5Hex(data: Buffer | string): string {
  return createHash('md5').update(data).digest('hex');
}

async function md5OfFile(path: string): Promise<string> {
  const hash = createHash('md5');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** A file in a destination folder, by its path relative to the folder (`/` separators). */
export interface TreeFile {
  bytes: number;
  md5: string;
  mtimeMs: number;
}

/**
 * Every regular file under `root` except the control folder (and, unless asked, the manifests):
 * relative path → size, MD5 and modification time. Symlinks count as files (they must not exist).
 */
export async function treeOf(
  root: string,
  options: { manifests?: boolean } = {},
): Promise<Map<string, TreeFile>> {
  const files = new Map<string, TreeFile>();
  const walk = async (dir: string, prefix: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      const relative = `${prefix}${entry.name}`;
      if (relative === LOCAL_CONTROL_DIR) continue;
      if (!options.manifests && `${relative}/` === MANIFESTS_PREFIX) continue;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        await walk(path, `${relative}/`);
        continue;
      }
      const info = await lstat(path);
      files.set(relative, { bytes: info.size, md5: await md5OfFile(path), mtimeMs: info.mtimeMs });
    }
  };
  await walk(root, '');
  return files;
}

/** How many regular files are under `dir` right now (0 when it does not exist). */
export async function countFiles(dir: string): Promise<number> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((entry) => entry.isFile()).length;
}

/**
 * Where each asset's copy must be, exactly as `npm run pull` lays out a bucket: keys in S3's
 * (UTF-8 byte) order, names that cannot be paths, that collide on a case-insensitive disk, or
 * that other keys need as a folder, under `_unsafe/`. Relative path → asset.
 */
export function expectedLayout(assets: readonly DoubleAsset[]): Map<string, DoubleAsset> {
  const byKey = new Map(assets.map((asset) => [keyOf(asset), asset]));
  const keys = [...byKey.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const placer = new Placer(keys);
  const layout = new Map<string, DoubleAsset>();
  for (const key of keys) layout.set(placer.place(key).relative, byKey.get(key) as DoubleAsset);
  return layout;
}

/**
 * Compares a backup folder with the library: every asset's copy at its place with the library's
 * MD5, and nothing else besides. Returns the differences, one line each (empty when identical).
 */
export async function differencesFromLibrary(
  root: string,
  library: Library,
  assets: readonly DoubleAsset[] = library.all(),
): Promise<string[]> {
  const tree = await treeOf(root);
  const problems: string[] = [];
  const layout = expectedLayout(assets);
  const unsafe = [...layout.keys()].filter((relative) => relative.startsWith(`${UNSAFE_DIR}/`)).sort();
  if (unsafe.length > 0) {
    // `_unsafe/INDEX.tsv` names every file beside it, once, with the asset it holds.
    tree.delete(UNSAFE_INDEX);
    const text = await readFile(join(root, ...UNSAFE_INDEX.split('/')), 'utf8').catch(() => '');
    const listed = text
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => `${UNSAFE_DIR}/${line.split('\t')[0] ?? ''}`);
    const want = JSON.stringify(unsafe);
    if (JSON.stringify(listed) !== want)
      problems.push(`${UNSAFE_INDEX} lists ${JSON.stringify(listed)}, want ${want}`);
  }
  for (const [relative, asset] of layout) {
    const file = tree.get(relative);
    tree.delete(relative);
    const md5 = await library.md5Of(asset);
    if (!file) problems.push(`missing ${relative}`);
    else if (file.md5 !== md5 || file.bytes !== asset.bytes)
      problems.push(`wrong bytes in ${relative} (${file.bytes} bytes, md5 ${file.md5}; want ${md5})`);
  }
  for (const relative of tree.keys()) problems.push(`unexpected ${relative}`);
  return problems;
}

/** Polls `probe` until it returns true (or throws after `timeoutMs`). */
export async function waitUntil(
  probe: () => Promise<boolean> | boolean,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

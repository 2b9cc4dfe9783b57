import { existsSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { LOCAL_CONTROL_DIR } from '../constants.js';
import { ConfigError, describeError } from '../errors.js';
import { assertNoSymlinkParents, UNSAFE_DIR } from '../local/safePath.js';
import { UNSAFE_INDEX, writeUnsafeIndex } from '../local/unsafeIndex.js';
import {
  formatBytes,
  ProgressReporter,
  type ProgressMode,
  type ProgressOptions,
  type ProgressStream,
} from '../progress.js';
import { checkArchived, type ArchiveStatus, type RestoreTier } from './archive.js';
import { decide, isArchived, Placer, type ListedObject, type LocalFile } from './decide.js';
import { findStaleFiles, removeStaleFiles } from './prune.js';
import { PULL_INDEX_FILE, PullIndex, type PulledRecord } from './PullIndex.js';
import { relocatePulled } from './relocate.js';
import { acquirePullLock, checkDestination, makeControlDir } from './setup.js';
import { BandwidthLimit } from './throttle.js';
import { adoptLocal, downloadObject, verifyLocal, type TransferContext } from './transfer.js';

export interface PullOptions {
  /** Destination folder; must exist and be writable. */
  dest: string;
  bucket: string;
  /** Only keys starting with this (and, with `delete`, only local files under it). */
  prefix?: string;
  /** Parallel transfers (default 4). */
  concurrency?: number;
  /** Report what would happen; download, restore and delete nothing. */
  dryRun?: boolean;
  /** Delete local files no longer in the bucket (inside the destination, never the control folder). */
  delete?: boolean;
  /** Ask S3 to restore archived objects with this retrieval tier. */
  restoreArchived?: RestoreTier;
  /** Days a restored copy stays readable (default 7). */
  restoreDays?: number;
  /** Re-hash every local file and fetch again the ones that no longer match. */
  verify?: boolean;
  /** Bytes per second for all transfers together. */
  bwlimit?: number;
  /** Attempts per file for retryable errors (default 3). */
  attempts?: number;
  signal?: AbortSignal;
}

export interface PullDeps {
  s3: S3Client;
  /** Where progress, messages and the summary go (JSON lines in 'json' mode). */
  out: ProgressStream;
  mode: ProgressMode;
  now?: () => Date;
  /** Overrides for the progress display (tests). */
  progress?: Partial<ProgressOptions>;
}

export interface PullFailure {
  key: string;
  error: string;
}

export interface PullSummary {
  bucket: string;
  prefix: string;
  dest: string;
  dryRun: boolean;
  listed: number;
  listedBytes: number;
  /** Files written this run (in a dry run: that would be). */
  downloaded: number;
  /** Bytes fetched this run (a resumed file counts only its remainder). */
  downloadedBytes: number;
  /** Bytes already on disk from interrupted downloads, kept and hashed instead of fetched again. */
  resumedBytes: number;
  /** Unchanged: recognised from the listing and the index. */
  skipped: number;
  /** Files already there but unrecorded, recognised by MD5 and recorded. */
  adopted: number;
  verified: number;
  /** Local files whose bytes no longer matched (fetched again unless dry run). */
  corrupt: number;
  /** Archived (GLACIER, DEEP_ARCHIVE) and not restored: not downloaded. */
  archived: number;
  restoreRequested: number;
  restoring: number;
  failed: number;
  deleted: number;
  /** Objects with no MD5 anywhere (no metadata, no tag, multipart ETag): checked by size only. */
  sizeOnly: number;
  /** Keys saved under `_unsafe/` because their name cannot be a path here. */
  unsafe: number;
  folderMarkers: number;
  interrupted: boolean;
  listSeconds: number;
  seconds: number;
  failures: PullFailure[];
}

const LIST_PAGE_SIZE = 1000;
const MAX_LISTED_NAMES = 10;

/**
 * Mirrors a bucket (or a prefix of it) into a local folder: lists everything, decides from the
 * listing and the local index what changed, downloads that in parallel (resumable, verified,
 * atomic), handles archived objects, optionally prunes, and reports. Never writes outside `dest`.
 */
export async function runPull(options: PullOptions, deps: PullDeps): Promise<PullSummary> {
  const started = Date.now();
  const now = deps.now ?? (() => new Date());
  const dryRun = options.dryRun ?? false;
  const prefix = options.prefix ?? '';
  const progress = new ProgressReporter({
    stream: deps.out,
    mode: deps.mode,
    label: 'pull',
    ...deps.progress,
  });
  const summary: PullSummary = {
    bucket: options.bucket,
    prefix,
    dest: options.dest,
    dryRun,
    listed: 0,
    listedBytes: 0,
    downloaded: 0,
    downloadedBytes: 0,
    resumedBytes: 0,
    skipped: 0,
    adopted: 0,
    verified: 0,
    corrupt: 0,
    archived: 0,
    restoreRequested: 0,
    restoring: 0,
    failed: 0,
    deleted: 0,
    sizeOnly: 0,
    unsafe: 0,
    folderMarkers: 0,
    interrupted: false,
    listSeconds: 0,
    seconds: 0,
    failures: [],
  };

  const root = await checkDestination(options.dest);
  summary.dest = root;
  const controlDir = join(root, LOCAL_CONTROL_DIR);
  const partialDir = join(controlDir, 'partial');
  // A dry run leaves the destination as it was: no control folder, no index when there is none yet.
  const useMemoryIndex = dryRun && !existsSync(join(controlDir, PULL_INDEX_FILE));
  if (!useMemoryIndex) await makeControlDir(partialDir);
  const release = dryRun ? async () => undefined : await acquirePullLock(controlDir);
  let index: PullIndex;
  try {
    index = new PullIndex(root, useMemoryIndex ? { file: ':memory:' } : {});
  } catch (error) {
    await release();
    throw error;
  }
  const ctx: TransferContext = {
    s3: deps.s3,
    bucket: options.bucket,
    root,
    partialDir,
    index,
    progress,
    limit: options.bwlimit ? new BandwidthLimit(options.bwlimit) : undefined,
    signal: options.signal,
    attempts: options.attempts ?? 3,
    now,
  };
  const concurrency = Math.max(1, Math.floor(options.concurrency ?? 4));
  const names = {
    archived: [] as string[],
    restoreRequested: [] as string[],
    restoring: [] as string[],
  };
  const fail = (key: string, error: unknown): void => {
    if (options.signal?.aborted) {
      summary.interrupted = true;
      return;
    }
    const message = describeError(error);
    summary.failed += 1;
    summary.failures.push({ key, error: message });
    progress.message(`failed ${key}: ${message}`, { key, action: 'failed', error: message });
  };

  try {
    // 1. List everything first: the plan needs every name (collisions, pruning) and the totals.
    const listStarted = Date.now();
    progress.status(`listing s3://${options.bucket}/${prefix}…`);
    const listed = await listAll(deps.s3, options.bucket, prefix, options.signal, (count) =>
      progress.status(`listing s3://${options.bucket}/${prefix}… ${count} objects`),
    );
    progress.status(undefined);
    summary.listSeconds = (Date.now() - listStarted) / 1000;
    summary.listed = listed.length;
    summary.listedBytes = listed.reduce((sum, o) => sum + o.size, 0);

    // 2. Decide, from the listing, the index and one lstat per object.
    const placer = new Placer(listed.filter((o) => !(o.key.endsWith('/') && o.size === 0)).map((o) => o.key));
    const expectedPaths: string[] = [];
    const toAdopt: Planned[] = [];
    const toVerify: (Planned & { record: PulledRecord })[] = [];
    const toCheckArchive: Planned[] = [];
    const toDownload: (Planned & { fresh?: boolean })[] = [];
    for (const object of listed) {
      const placement = placer.place(object.key);
      if (object.key.endsWith('/') && object.size === 0) {
        summary.folderMarkers += 1;
        continue;
      }
      expectedPaths.push(placement.relative);
      let record = index.get(object.key);
      if (record && record.localPath !== placement.relative && !dryRun)
        record = (await relocatePulled(root, index, record, placement.relative)) ?? record;
      const local = localFile(root, placement.relative);
      const planned: Planned = { object, relative: placement.relative, local };
      const action = decide(object, record?.localPath === placement.relative ? record : undefined, local, {
        verify: options.verify,
      });
      if (placement.unsafeReason !== undefined) {
        summary.unsafe += 1;
        // Said once, when the file is first written; the summary keeps counting them.
        if (action !== 'skip' && action !== 'verify') {
          progress.message(
            `unsafe name ${JSON.stringify(object.key)} (${placement.unsafeReason}): saved as ${placement.relative}`,
            {
              key: object.key,
              action: 'unsafe-name',
              path: placement.relative,
              reason: placement.unsafeReason,
            },
          );
        }
      }
      if (action === 'skip') summary.skipped += 1;
      else if (action === 'verify' && record) toVerify.push({ ...planned, record });
      else if (action === 'adopt') toAdopt.push(planned);
      else if (action === 'archived') toCheckArchive.push(planned);
      else if (action === 'download') toDownload.push(planned);
    }

    // 3. Hash what is on disk but unproven: unknown files of the right size, and --verify.
    if (toAdopt.length + toVerify.length > 0) {
      progress.status(`checking ${toAdopt.length + toVerify.length} local files…`);
    }
    await forEachLimit(toAdopt, concurrency, options.signal, async (item) => {
      try {
        await assertNoSymlinkParents(root, item.relative);
        const local = item.local as LocalFile;
        if (await adoptLocal(ctx, item.object, item.relative, local, { record: !dryRun })) {
          summary.adopted += 1;
          progress.event('file', { key: item.object.key, action: 'adopted', path: item.relative });
        } else if (isArchived(item.object.storageClass)) {
          toCheckArchive.push(item);
        } else {
          toDownload.push({ ...item, fresh: true });
        }
      } catch (error) {
        fail(item.object.key, error);
      }
    });
    await forEachLimit(toVerify, concurrency, options.signal, async (item) => {
      try {
        await assertNoSymlinkParents(root, item.relative);
        summary.verified += 1;
        if (await verifyLocal(ctx, item.record)) {
          summary.skipped += 1;
          if (item.record.md5Source === 'none') summary.sizeOnly += 1;
          return;
        }
        summary.corrupt += 1;
        progress.message(
          `corrupt ${item.relative}: its bytes changed since they were verified; fetching it again`,
          {
            key: item.object.key,
            action: 'corrupt',
            path: item.relative,
          },
        );
        if (isArchived(item.object.storageClass)) toCheckArchive.push(item);
        else toDownload.push({ ...item, fresh: true });
      } catch (error) {
        fail(item.object.key, error);
      }
    });

    // 4. Archived objects: report, or check and request restores; restored ones join the downloads.
    await forEachLimit(toCheckArchive, concurrency, options.signal, async (item) => {
      try {
        const status: ArchiveStatus = await checkArchived(ctx, item.object, {
          restore: options.restoreArchived,
          days: options.restoreDays ?? 7,
          dryRun,
        });
        if (status === 'restored') {
          toDownload.push(item);
          return;
        }
        countArchive(summary, names, status, item.object.key);
        progress.event('file', {
          key: item.object.key,
          action: status,
          storageClass: item.object.storageClass,
        });
      } catch (error) {
        fail(item.object.key, error);
      }
    });
    progress.status(undefined);

    // 5. Transfers.
    toDownload.sort((a, b) => (a.object.key < b.object.key ? -1 : 1));
    progress.setTotals({
      files: toDownload.length,
      bytes: toDownload.reduce((sum, i) => sum + i.object.size, 0),
    });
    if (dryRun) {
      for (const item of toDownload) {
        summary.downloaded += 1;
        summary.downloadedBytes += item.object.size;
        progress.message(`would download ${item.object.key} (${formatBytes(item.object.size)})`, {
          key: item.object.key,
          action: 'would-download',
          path: item.relative,
          bytes: item.object.size,
        });
      }
    } else {
      await forEachLimit(toDownload, concurrency, options.signal, async (item) => {
        try {
          const outcome = await downloadObject(ctx, item.object, item.relative, { fresh: item.fresh });
          if (outcome.kind === 'archived') {
            countArchive(summary, names, 'archived', item.object.key);
            progress.event('file', { key: item.object.key, action: 'archived' });
          } else if (outcome.kind === 'vanished') {
            progress.message(`gone ${item.object.key}: deleted from the bucket while this pull ran`, {
              key: item.object.key,
              action: 'vanished',
            });
          } else {
            summary.downloaded += 1;
            summary.downloadedBytes += outcome.bytes;
            summary.resumedBytes += outcome.resumedFrom;
            if (outcome.record.md5Source === 'none') summary.sizeOnly += 1;
            if (progress.mode === 'plain') {
              const resumed =
                outcome.resumedFrom > 0 ? `, resumed at ${formatBytes(outcome.resumedFrom)}` : '';
              progress.message(`downloaded ${item.relative} (${formatBytes(outcome.record.size)}${resumed})`);
            }
            progress.event('file', {
              key: item.object.key,
              action: 'downloaded',
              path: item.relative,
              bytes: outcome.bytes,
              resumedFrom: outcome.resumedFrom,
              md5: outcome.record.md5,
              md5Source: outcome.record.md5Source,
            });
          }
        } catch (error) {
          fail(item.object.key, error);
        }
      });
    }
    if (options.signal?.aborted) summary.interrupted = true;

    // 6. Prune: only after a complete listing, never on an interrupted run, never an empty listing.
    if (options.delete && !summary.interrupted) {
      await prune(
        root,
        prefix,
        [...expectedPaths, UNSAFE_INDEX],
        listed.length,
        index,
        dryRun,
        summary,
        progress,
      );
    }
    // 7. Say which asset each `_unsafe/` file is (the same index a backup writes).
    if (!dryRun) {
      const unsafe = [...index.all()].filter(
        (r) => r.localPath.startsWith(`${UNSAFE_DIR}/`) && localFile(root, r.localPath) !== undefined,
      );
      writeUnsafeIndex(
        root,
        unsafe.map((r) => ({ path: r.localPath, key: r.key })),
      );
    }
  } finally {
    summary.seconds = (Date.now() - started) / 1000;
    progress.stop();
    index.close();
    await release();
  }
  report(summary, names, progress, options);
  return summary;
}

interface Planned {
  object: ListedObject;
  relative: string;
  local?: LocalFile;
}

function countArchive(
  summary: PullSummary,
  names: { archived: string[]; restoreRequested: string[]; restoring: string[] },
  status: Exclude<ArchiveStatus, 'restored'>,
  key: string,
): void {
  if (status === 'archived') {
    summary.archived += 1;
    names.archived.push(key);
  } else if (status === 'restoring') {
    summary.restoring += 1;
    names.restoring.push(key);
  } else {
    summary.restoreRequested += 1;
    names.restoreRequested.push(key);
  }
}

/** One lstat (no symlink following): a regular file's size and mtime, else undefined. */
function localFile(root: string, relative: string): LocalFile | undefined {
  try {
    const info = lstatSync(join(root, ...relative.split('/')), { throwIfNoEntry: false });
    return info?.isFile() ? { size: info.size, mtimeMs: info.mtimeMs } : undefined;
  } catch {
    // A parent that is a file (ENOTDIR): nothing usable there.
    return undefined;
  }
}

/** Lists every object under `prefix`, page by page, turning "no bucket" and "no access" into advice. */
export async function listAll(
  s3: S3Client,
  bucket: string,
  prefix: string,
  signal: AbortSignal | undefined,
  onPage: (count: number) => void = () => undefined,
): Promise<ListedObject[]> {
  const objects: ListedObject[] = [];
  let token: string | undefined;
  do {
    let page;
    try {
      page = await s3.send(
        new ListObjectsV2Command({
          Bucket: bucket,
          Prefix: prefix || undefined,
          ContinuationToken: token,
          MaxKeys: LIST_PAGE_SIZE,
          // Keys may hold characters XML cannot carry; URL encoding brings every key back intact.
          EncodingType: 'url',
        }),
        { abortSignal: signal },
      );
    } catch (error) {
      throw listingError(error, bucket);
    }
    for (const item of page.Contents ?? []) {
      if (item.Key === undefined) continue;
      objects.push({
        key: decodeListedKey(item.Key),
        size: item.Size ?? 0,
        etag: item.ETag ?? '',
        lastModified: item.LastModified,
        storageClass: item.StorageClass,
      });
    }
    onPage(objects.length);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return objects;
}

/** S3 URL-encodes listed keys (spaces may come back as '+'; a real '+' comes as %2B). */
export function decodeListedKey(encoded: string): string {
  return decodeURIComponent(encoded.replace(/\+/gu, ' '));
}

function listingError(error: unknown, bucket: string): unknown {
  const name = (error as { name?: string }).name ?? '';
  if (name === 'NoSuchBucket') {
    return new ConfigError(
      `bucket ${bucket} does not exist (or is in another account): check --bucket / BACKUP_BUCKET and AWS_REGION`,
      { cause: error },
    );
  }
  if (
    name === 'AccessDenied' ||
    name === 'AllAccessDisabled' ||
    name === 'InvalidAccessKeyId' ||
    name === 'SignatureDoesNotMatch'
  ) {
    return new ConfigError(
      `AWS refused to list bucket ${bucket} (${name}): check your credentials (AWS_PROFILE) and that they may s3:ListBucket it`,
      { cause: error },
    );
  }
  if (name === 'CredentialsProviderError') {
    return new ConfigError(
      'no AWS credentials found: set AWS_PROFILE (or run `aws sso login`) and try again',
      {
        cause: error,
      },
    );
  }
  return error;
}

async function prune(
  root: string,
  prefix: string,
  expectedPaths: string[],
  listedCount: number,
  index: PullIndex,
  dryRun: boolean,
  summary: PullSummary,
  progress: ProgressReporter,
): Promise<void> {
  const unsafeInScope = new Set<string>();
  if (prefix) {
    for (const record of index.all()) {
      if (record.key.startsWith(prefix) && record.localPath.startsWith(`${UNSAFE_DIR}/`))
        unsafeInScope.add(record.localPath);
    }
  }
  const inScope = (relative: string): boolean =>
    !prefix || relative.startsWith(prefix) || unsafeInScope.has(relative);
  const stale = await findStaleFiles(root, expectedPaths, inScope);
  if (stale.length === 0) return;
  if (listedCount === 0) {
    progress.message(
      `not deleting ${stale.length} local files: the bucket listing is empty, which looks like a wrong --bucket or --prefix`,
      { action: 'delete-refused', files: stale.length },
    );
    return;
  }
  const removed = dryRun ? stale : await removeStaleFiles(root, stale);
  for (const relative of removed) {
    for (const record of index.byPath(relative)) if (!dryRun) index.remove(record.key);
    progress.message(`${dryRun ? 'would delete' : 'deleted'} ${relative}`, {
      action: dryRun ? 'would-delete' : 'deleted',
      path: relative,
    });
  }
  summary.deleted = removed.length;
}

async function forEachLimit<T>(
  items: T[],
  limit: number,
  signal: AbortSignal | undefined,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length && !signal?.aborted) {
      const item = items[next++] as T;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function report(
  summary: PullSummary,
  names: { archived: string[]; restoreRequested: string[]; restoring: string[] },
  progress: ProgressReporter,
  options: PullOptions,
): void {
  if (progress.mode === 'json') {
    progress.event('summary', { ...summary });
    return;
  }
  const lines: string[] = [];
  const would = summary.dryRun ? 'would download' : 'downloaded';
  lines.push(
    `${summary.dryRun ? 'Dry run: ' : ''}s3://${summary.bucket}/${summary.prefix} → ${summary.dest}: ` +
      `${summary.listed} objects (${formatBytes(summary.listedBytes)}) listed in ${summary.listSeconds.toFixed(1)} s, ` +
      `finished in ${summary.seconds.toFixed(1)} s`,
  );
  const resumed =
    summary.resumedBytes > 0 ? `; ${formatBytes(summary.resumedBytes)} kept from interrupted downloads` : '';
  lines.push(`  ${would}: ${summary.downloaded} (${formatBytes(summary.downloadedBytes)}${resumed})`);
  lines.push(`  unchanged: ${summary.skipped}`);
  if (summary.adopted) lines.push(`  already there (matched by MD5): ${summary.adopted}`);
  if (options.verify) lines.push(`  verified: ${summary.verified}, corrupt: ${summary.corrupt}`);
  if (summary.archived) {
    lines.push(
      `  archived (Glacier, not downloaded): ${summary.archived}${options.restoreArchived ? '' : ' — run again with --restore-archived to request them'}`,
    );
    lines.push(...listSome(names.archived));
  }
  if (summary.restoreRequested) {
    lines.push(
      `  restore ${summary.dryRun ? 'would be ' : ''}requested: ${summary.restoreRequested} — Bulk takes ~5–12 h (Deep Archive up to 48 h), Standard ~3–5 h (12 h); run pull again then`,
    );
    lines.push(...listSome(names.restoreRequested));
  }
  if (summary.restoring) {
    lines.push(`  restoring (requested earlier, not ready yet): ${summary.restoring} — run pull again later`);
    lines.push(...listSome(names.restoring));
  }
  if (options.delete) lines.push(`  ${summary.dryRun ? 'would delete' : 'deleted'}: ${summary.deleted}`);
  if (summary.sizeOnly)
    lines.push(`  checked by size only (no MD5 in metadata, tags or a plain ETag): ${summary.sizeOnly}`);
  if (summary.unsafe)
    lines.push(`  names that cannot be paths, saved under ${UNSAFE_DIR}/: ${summary.unsafe}`);
  if (summary.folderMarkers) lines.push(`  folder placeholders ignored: ${summary.folderMarkers}`);
  if (summary.failed) {
    lines.push(`  FAILED: ${summary.failed}`);
    for (const failure of summary.failures.slice(0, MAX_LISTED_NAMES))
      lines.push(`    ${failure.key}: ${failure.error}`);
    if (summary.failures.length > MAX_LISTED_NAMES)
      lines.push(`    … and ${summary.failures.length - MAX_LISTED_NAMES} more (see --json)`);
  }
  if (summary.interrupted)
    lines.push('  Interrupted: run the same command again to resume where it stopped.');
  progress.message(lines.join('\n'));
}

function listSome(keys: string[]): string[] {
  const shown = keys.slice(0, MAX_LISTED_NAMES).map((key) => `    ${key}`);
  if (keys.length > MAX_LISTED_NAMES)
    shown.push(`    … and ${keys.length - MAX_LISTED_NAMES} more (see --json)`);
  return shown;
}

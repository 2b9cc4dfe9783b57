import type { CloudinaryCredentials } from '../config.js';
import { adminBackoffMs, DEFAULT_ADMIN_RETRY, type AdminRetryPolicy } from '../cloudinary/adminRetry.js';
import { normalizeSdkError, nextHour } from '../cloudinary/errors.js';
import { callOptions, loadCloudinarySdk, type CloudinaryV2 } from '../cloudinary/sdk.js';
import { mapLimit } from '../concurrency.js';
import { describeError, dispositionOf, FatalError, RateLimitedError } from '../errors.js';
import type { ManifestEntry } from '../engine/manifest.js';
import { buildCatalog } from './catalog.js';
import { RestoreJournal } from './RestoreJournal.js';
import type { BackupReader, LocatedCopy, RestoreEvent, RestoreSelection, RestoreSummary } from './types.js';
import { uploadAsset, type UploadSettings } from './uploadAsset.js';
import { judgeAnswer } from './verify.js';

/** The SDKs' upload_large chunk size. */
export const DEFAULT_CHUNK_BYTES = 20_000_000;

export interface RestoreOptions {
  reader: BackupReader;
  credentials: CloudinaryCredentials;
  selection: RestoreSelection;
  /** Where verified restores are remembered, so a rerun skips them. */
  journalFile: string;
  overwrite?: boolean;
  dryRun?: boolean;
  /** Uploads at once (each holds one chunk in memory). */
  concurrency?: number;
  chunkBytes?: number;
  idleTimeoutMs?: number;
  /** Tries per asset on 5xx, timeouts, resets and 420/429, with exponential backoff. */
  retry?: Partial<AdminRetryPolicy>;
  now?: () => Date;
  onEvent?: (event: RestoreEvent) => void;
  onBytes?: (count: number) => void;
  /** Called once the selection is known. */
  onSelected?: (files: number, bytes: number) => void;
}

/** The SDK's own timeout is not enforced (CLOUDINARY.md): the check gives up after this long. */
const CHECK_TIMEOUT_MS = 30_000;

/**
 * Checks the credentials once, before any upload: a wrong CLOUDINARY_URL stops the run at once. A
 * spent Admin API budget (420/429) does not stop it: the Upload API is not rate-limited.
 */
async function checkTarget(sdk: CloudinaryV2, credentials: CloudinaryCredentials): Promise<void> {
  const what = `reaching Cloudinary product environment "${credentials.cloudName}"`;
  let timer: NodeJS.Timeout | undefined;
  const silent = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new FatalError(`${what}: no answer within ${CHECK_TIMEOUT_MS / 1000} s`)),
      CHECK_TIMEOUT_MS,
    );
  });
  try {
    await Promise.race([sdk.api.ping(callOptions(credentials)), silent]);
  } catch (raw) {
    if (raw instanceof FatalError) throw raw;
    const error = normalizeSdkError(raw, what, () => nextHour(new Date()));
    if (error instanceof RateLimitedError) return;
    if (error instanceof FatalError) throw error;
    throw new FatalError(`${error.message}; check CLOUDINARY_URL and the network, then run again`);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Puts a backup back into the Cloudinary product environment `credentials` name: each selected asset
 * with its public id, resource type, delivery type, tags, context and structured metadata, verified
 * against the backed-up MD5 and size, never overwriting unless asked, resumable through its journal.
 */
export async function runRestore(options: RestoreOptions): Promise<RestoreSummary> {
  const now = options.now ?? (() => new Date());
  const emit = options.onEvent ?? (() => undefined);
  const retry: AdminRetryPolicy = { ...DEFAULT_ADMIN_RETRY, tries: 5, ...options.retry };
  const settings: UploadSettings = {
    overwrite: options.overwrite === true,
    chunkBytes: options.chunkBytes ?? DEFAULT_CHUNK_BYTES,
    idleTimeoutMs: options.idleTimeoutMs ?? 120_000,
  };
  const { reader, credentials, selection } = options;
  const catalog = await buildCatalog(reader, selection);
  const summary: RestoreSummary = {
    source: reader.description,
    target: credentials.cloudName,
    runId: catalog.manifest.runId,
    selected: catalog.entries.length,
    selectedBytes: catalog.entries.reduce((n, e) => n + e.bytes, 0),
    restored: 0,
    restoredBytes: 0,
    alreadyThere: 0,
    skipped: [],
    refused: [],
    failed: [],
    dryRun: options.dryRun === true,
  };
  options.onSelected?.(summary.selected, summary.selectedBytes);
  const journal = new RestoreJournal(options.journalFile, credentials.cloudName);
  let sdk: CloudinaryV2 | undefined;
  if (!options.dryRun) {
    sdk = await loadCloudinarySdk(credentials);
    await checkTarget(sdk, credentials);
  }
  let fatal: unknown;

  const report = (entry: ManifestEntry, outcome: RestoreEvent['outcome'], reason?: string): void => {
    switch (outcome) {
      case 'restored':
        summary.restored += 1;
        summary.restoredBytes += entry.bytes;
        break;
      case 'already-there':
        summary.alreadyThere += 1;
        break;
      case 'skipped':
        summary.skipped.push({ id: entry.id, reason: reason ?? '' });
        break;
      case 'refused':
        summary.refused.push({ id: entry.id, reason: reason ?? '' });
        break;
      case 'failed':
        summary.failed.push({ id: entry.id, reason: reason ?? '' });
        break;
      case 'would-restore':
        break;
    }
    emit({
      kind: 'asset',
      id: entry.id,
      outcome,
      bytes: entry.bytes,
      ...(reason !== undefined && { reason }),
    });
  };

  const restoreOne = async (entry: ManifestEntry): Promise<void> => {
    if (fatal !== undefined) return;
    try {
      await restoreEntry(entry);
    } catch (error) {
      // Reading the backup failed for this asset (the upload's own errors are handled inside).
      if (dispositionOf(error) === 'fatal') fatal ??= error;
      else report(entry, 'failed', describeError(error));
    }
  };

  const restoreEntry = async (entry: ManifestEntry): Promise<void> => {
    const copy = await reader.locate(entry.objectKey, selection.asOf);
    const problem = copyProblem(entry, copy);
    if (problem !== undefined || copy === undefined) {
      report(entry, 'failed', problem);
      return;
    }
    const expectedMd5 = copy.md5 ?? entry.etag;
    if (!settings.overwrite && journal.has(entry.id, expectedMd5, copy.bytes)) {
      report(entry, 'already-there', 'restored and verified by an earlier run (journal)');
      return;
    }
    if (options.dryRun || sdk === undefined) {
      report(entry, 'would-restore');
      return;
    }
    for (let attempt = 1; ; attempt += 1) {
      try {
        const body = await reader.open(entry.objectKey, copy);
        const result = await uploadAsset(sdk, credentials, entry, body, settings, options.onBytes);
        const verdict = judgeAnswer(result, { md5: expectedMd5, bytes: copy.bytes }, settings.overwrite);
        if (verdict.outcome === 'restored' || verdict.outcome === 'already-there') {
          journal.record(entry.id, result.readMd5, result.readBytes, now());
        }
        report(entry, verdict.outcome, verdict.reason);
        return;
      } catch (error) {
        const disposition = dispositionOf(error);
        if (disposition === 'fatal') {
          fatal ??= error;
          return;
        }
        if (disposition === 'retry' && attempt < retry.tries) {
          await retry.sleep(adminBackoffMs(retry, attempt));
          continue;
        }
        const message = describeError(error);
        report(entry, disposition === 'retry' ? 'failed' : 'refused', message);
        return;
      }
    }
  };

  try {
    await mapLimit(catalog.entries, Math.max(1, options.concurrency ?? 4), restoreOne);
  } finally {
    reader.close();
  }
  if (fatal !== undefined) throw fatal;
  return summary;
}

/** Why the backup cannot give this asset's bytes back, if it cannot. */
function copyProblem(entry: ManifestEntry, copy: LocatedCopy | undefined): string | undefined {
  if (copy === undefined) return `the backup holds no copy of it (${entry.objectKey})`;
  if (copy.version !== undefined && copy.version !== entry.version) {
    return `the backup copy is version ${copy.version}, the manifest describes version ${entry.version}`;
  }
  if (copy.bytes !== entry.bytes)
    return `the backup copy has ${copy.bytes} bytes, the manifest says ${entry.bytes}`;
  return undefined;
}

import { HeadObjectCommand, RestoreObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { ListedObject } from './decide.js';
import type { PullIndex } from './PullIndex.js';

export type RestoreTier = 'Bulk' | 'Standard';

/**
 * Where an archived object stands:
 * - restored: a temporary copy is readable now (download it);
 * - restoring: a restore is under way (S3 says `ongoing-request="true"`);
 * - restore-requested: this run asked for one;
 * - archived: not readable, and no restore was asked for.
 */
export type ArchiveStatus = 'restored' | 'restoring' | 'restore-requested' | 'archived';

export interface ArchiveContext {
  s3: S3Client;
  bucket: string;
  index: PullIndex;
  signal?: AbortSignal;
  now: () => Date;
}

/** Reads the `x-amz-restore` header: `ongoing-request="false", expiry-date="..."` means readable. */
export function restoreStateOf(header: string | undefined): 'none' | 'ongoing' | 'done' {
  if (!header) return 'none';
  if (/ongoing-request\s*=\s*"true"/iu.test(header)) return 'ongoing';
  if (/ongoing-request\s*=\s*"false"/iu.test(header)) return 'done';
  return 'none';
}

/**
 * Checks an archived object (one HEAD, only for objects with a restore on record or when asked
 * to restore) and, with `restore`, asks S3 for a temporary copy. Never throws for S3's
 * "already in progress"; the request is remembered in the index for the next run.
 */
export async function checkArchived(
  ctx: ArchiveContext,
  listed: ListedObject,
  options: { restore?: RestoreTier; days: number; dryRun: boolean },
): Promise<ArchiveStatus> {
  const recorded = ctx.index.restore(listed.key);
  if (!recorded && !options.restore) return 'archived';
  const head = await ctx.s3.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: listed.key }), {
    abortSignal: ctx.signal,
  });
  const state = restoreStateOf(head.Restore);
  if (state === 'done') return 'restored';
  if (state === 'ongoing') return 'restoring';
  if (!options.restore) return 'archived';
  if (options.dryRun) return 'restore-requested';
  try {
    await ctx.s3.send(
      new RestoreObjectCommand({
        Bucket: ctx.bucket,
        Key: listed.key,
        RestoreRequest: { Days: options.days, GlacierJobParameters: { Tier: options.restore } },
      }),
      { abortSignal: ctx.signal },
    );
  } catch (error) {
    if ((error as { name?: string }).name !== 'RestoreAlreadyInProgress') throw error;
    ctx.index.putRestore({
      key: listed.key,
      etag: listed.etag,
      tier: options.restore,
      requestedAt: ctx.now().toISOString(),
    });
    return 'restoring';
  }
  ctx.index.putRestore({
    key: listed.key,
    etag: listed.etag,
    tier: options.restore,
    requestedAt: ctx.now().toISOString(),
  });
  return 'restore-requested';
}

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { CloudinarySource } from '../cloudinary/CloudinarySource.js';
import { unavailableNotes } from '../cloudinary/listingCapabilities.js';
import { listingsOf, reserveFor } from '../config.js';
import { LOCAL_CONTROL_DIR } from '../constants.js';
import { needsTransfer } from '../engine/decide.js';
import { RateLimitedError } from '../errors.js';
import { assetIdOf } from '../keys.js';
import { LocalObjectStore, OBJECT_INDEX_FILE } from '../local/LocalObjectStore.js';
import { SqliteStateStore, STATE_FILE } from '../local/SqliteStateStore.js';
import type { AssetState } from '../types.js';
import type { BackupOptions } from './runBackup.js';
import {
  emptySummary,
  PARTIALS_DIR,
  realSleepUntil,
  type BackupEvent,
  type BackupSummary,
} from './summary.js';

/**
 * Lists and compares without writing anything: not the folder, not the state (an existing state
 * is read; without one everything would be copied), not a manifest.
 */
export async function dryRun(
  dest: string,
  source: CloudinarySource,
  options: BackupOptions,
  now: () => Date,
  emit: (event: BackupEvent) => void,
): Promise<BackupSummary> {
  const controlDir = join(dest, LOCAL_CONTROL_DIR);
  const hasState = existsSync(join(controlDir, STATE_FILE));
  const state = new SqliteStateStore(dest, hasState ? {} : { file: ':memory:' });
  try {
    const summary = emptySummary(dest, 'dry-run');
    // What earlier runs learned about the account's Search: no call spent learning it again.
    const learned = (await state.latestRun())?.listingCapabilities;
    if (learned) source.useCapabilities(learned);
    const seen = new Set<string>();
    const listings = listingsOf(options.settings);
    // Like a real run: keep the reserve, and wait out a spent budget (or stop with --no-wait).
    const budgetBack = async (at: Date): Promise<boolean> => {
      if (options.wait === false) {
        summary.resumeAt = at.toISOString();
        return false;
      }
      emit({ kind: 'waiting', until: at });
      await (options.sleepUntil ?? realSleepUntil)(at);
      return true;
    };
    listing: for (const listing of listings) {
      let cursor: string | undefined;
      for (;;) {
        const budget = source.rateLimit;
        const reserve = budget ? reserveFor(options.settings.adminReserve, budget.limit) : 0;
        if (budget && budget.remaining <= reserve && budget.resetAt > now()) {
          if (await budgetBack(budget.resetAt)) continue;
          break listing;
        }
        let page;
        try {
          page = await source.listPage(listing, cursor);
        } catch (error) {
          if (!(error instanceof RateLimitedError)) throw error;
          if (await budgetBack(error.resetAt)) continue;
          break listing;
        }
        const states = await state.getMany(page.assets.map(assetIdOf));
        for (const asset of page.assets) {
          const id = assetIdOf(asset);
          seen.add(id);
          summary.listed += 1;
          if (needsTransfer(asset, states.get(id), { redrive: options.redrive })) {
            summary.toTransfer += 1;
            summary.toTransferBytes += asset.bytes;
          } else summary.unchanged += 1;
        }
        emit({
          kind: 'listed',
          listed: page.assets.length,
          enqueued: 0,
          totalListed: summary.listed,
          totalEnqueued: summary.toTransfer,
          enqueuedBytes: summary.toTransferBytes,
        });
        cursor = page.nextCursor;
        if (!cursor) break;
      }
    }
    summary.unavailable = unavailableNotes(source.capabilities);
    // Only a complete listing tells what is gone.
    if (summary.resumeAt !== undefined) return summary;
    // As the real run decides: what a complete listing no longer returns is deleted at the source.
    const covered = new Set(listings.map((l) => `${l.resourceType}/${l.deliveryType}`));
    const gone: AssetState[] = [];
    for await (const asset of state.listAssets()) {
      if (!covered.has(`${asset.resourceType}/${asset.deliveryType}`) || seen.has(asset.id)) continue;
      if (asset.status !== 'deleted-at-source') summary.deletedAtSource += 1;
      gone.push(asset);
    }
    if (options.prune) summary.pruned = await presentCopies(dest, gone);
    return summary;
  } finally {
    state.close();
  }
}

/** The object keys among `assets` whose copy is still in the folder (what --delete would remove). */
async function presentCopies(dest: string, assets: AssetState[]): Promise<string[]> {
  const controlDir = join(dest, LOCAL_CONTROL_DIR);
  if (assets.length === 0 || !existsSync(join(controlDir, OBJECT_INDEX_FILE))) return [];
  if (!existsSync(join(controlDir, PARTIALS_DIR))) return [];
  const store = new LocalObjectStore(dest);
  try {
    const present: string[] = [];
    for (const asset of assets) if (await store.head(asset.objectKey)) present.push(asset.objectKey);
    return present;
  } finally {
    store.close();
  }
}

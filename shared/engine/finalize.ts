import { listingId } from '../config.js';
import type { Listing, ObjectStore, StateStore } from '../types.js';
import { IdDigestSet } from './IdDigestSet.js';
import type { Log } from './log.js';
import { digestManifestParts, manifestParts, writeFinalManifest } from './manifest.js';

/** Asset states examined between two checkpoints of the scan. */
export const FINALIZE_CHECKPOINT_EVERY = 1_000;

export interface FinalizeDeps {
  store: ObjectStore;
  state: StateStore;
  log: Log;
}

export interface FinalizeStep {
  runId: string;
  listings: Listing[];
  /** When the assets were found gone (the run's clock). */
  at: string;
  /** Where an interrupted scan of the asset states stopped (a state id), if it was interrupted. */
  after?: string;
  /** States examined between checkpoints (FINALIZE_CHECKPOINT_EVERY when absent). */
  checkpointEvery?: number;
  /** True when the invocation must stop now to keep its deadline. */
  mustStop(): boolean;
  /** Persists the scan position and how many assets were marked deleted since the last call. */
  checkpoint(after: string, deleted: number): Promise<void>;
}

/**
 * Ends a listing: for the listings it covered completely (none for an incremental run), marks what the listing did not return as deleted at the source and
 * joins the manifest parts into the run's manifest. Memory is 8 bytes per listed id (the ids are
 * kept as digests, see IdDigestSet), and the scan of the state checkpoints every
 * FINALIZE_CHECKPOINT_EVERY states so a deadline only pauses it: the next invocation continues
 * from where it stopped. Returns 'stopped' when it paused for the deadline.
 */
export async function finalizeListing(
  deps: FinalizeDeps,
  step: FinalizeStep,
): Promise<'completed' | 'stopped'> {
  const parts = await manifestParts(deps.store, step.runId);
  const seen = new IdDigestSet();
  const digest = await digestManifestParts(deps.store, parts, (ids) => {
    for (const id of ids) seen.add(id);
  });
  const covered = new Set(step.listings.map(listingId));
  let gone: string[] = [];
  let last: string | undefined;
  let examined = 0;
  let deleted = 0;
  const flush = async () => {
    if (gone.length > 0) await deps.state.markDeleted(gone, step.at);
    if (last !== undefined) await step.checkpoint(last, gone.length);
    deleted += gone.length;
    gone = [];
    examined = 0;
  };

  if (step.mustStop()) return 'stopped';
  // No listing covered (an incremental run): no state is read, nothing is marked deleted.
  const states = covered.size > 0 ? deps.state.listAssets({ after: step.after }) : [];
  for await (const state of states) {
    last = state.id;
    examined++;
    if (
      state.status !== 'deleted-at-source' &&
      // A renamed id is gone at the source by design; its state already says where it went.
      state.status !== 'renamed' &&
      covered.has(`${state.resourceType}/${state.deliveryType}`) &&
      !seen.has(state.id)
    ) {
      gone.push(state.id);
    }
    if (examined >= (step.checkpointEvery ?? FINALIZE_CHECKPOINT_EVERY)) {
      await flush();
      if (step.mustStop()) return 'stopped';
    }
  }
  await flush();
  await writeFinalManifest(deps.store, step.runId, parts, digest);
  deps.log.info('enumerate: finalized', { runId: step.runId, deleted, seen: seen.size });
  return 'completed';
}

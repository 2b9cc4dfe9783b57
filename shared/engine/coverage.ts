import type { EngineSettings } from '../config.js';
import type { AssetSource, RunCoverage, RunRecord } from '../types.js';

/**
 * How far before the last successful run's start an incremental listing reaches back. Search is
 * eventually consistent (CLOUDINARY.md, "Incremental listing": seconds under normal load), and the
 * clocks of this machine and Cloudinary may differ: an hour covers both many times over, and costs
 * only a second look at the assets changed in that hour (found copied, not downloaded again).
 */
export const INCREMENTAL_OVERLAP_MS = 60 * 60_000;

const DAY_MS = 86_400_000;

export type CoverageSettings = Pick<
  EngineSettings,
  'resourceTypes' | 'deliveryTypes' | 'listingApi' | 'reconcileEveryDays'
>;

/** The settings a listing depends on: runs under other settings cannot continue from each other. */
export function settingsKeyOf(
  settings: Pick<EngineSettings, 'resourceTypes' | 'deliveryTypes' | 'listingApi'>,
): string {
  return [
    settings.listingApi,
    [...settings.resourceTypes].sort().join(','),
    [...settings.deliveryTypes].sort().join(','),
  ].join('|');
}

/**
 * What a new run lists: only the changes since the last successful run's start (minus the overlap),
 * or everything when the incremental position is unknown (first run, a failed run, a run whose
 * copies did not all finish, changed settings), a reconciliation is due, Search is not available, or a redrive asks for every asset.
 */
export function coverageFor(input: {
  previous: RunRecord | undefined;
  settings: CoverageSettings;
  source: Pick<AssetSource, 'listChanges'>;
  now: Date;
  startedAt: string;
  redrive: boolean;
}): RunCoverage {
  const { previous, settings, now, startedAt } = input;
  const settingsKey = settingsKeyOf(settings);
  const full = (reason: string): RunCoverage => ({
    kind: 'full',
    settingsKey,
    lastFullAt: startedAt,
    reason,
  });
  if (!previous) return full('first run');
  if (previous.phase !== 'completed')
    return full(`the last run ${previous.phase === 'failed' ? 'failed' : 'did not finish'}`);
  // Its listing finished but not all its copies (a killed runner's queue is gone): the assets it
  // listed and never copied are not changes any more, so only a full listing finds them again.
  if ((previous.counters.settled ?? 0) < previous.counters.enqueued)
    return full("the last run's copies did not all finish");
  const before = previous.coverage;
  // A run recorded before incremental listings existed: its start is known, its coverage is not.
  if (!before) return full('no earlier full listing is recorded');
  if (before.settingsKey !== settingsKey) return full('the listing settings changed');
  if (input.redrive) return full('a redrive lists every asset');
  if (settings.listingApi === 'resources') return full('LISTING_API=resources has no change search');
  if (!input.source.listChanges || previous.listingCapabilities?.searchUnavailable) {
    return full("Cloudinary's Search is not available for this account");
  }
  if (settings.reconcileEveryDays <= 0) return full('RECONCILE_EVERY_DAYS=0 lists everything every run');
  const lastFull = before.lastFullAt ? Date.parse(before.lastFullAt) : Number.NaN;
  if (!(now.getTime() - lastFull < settings.reconcileEveryDays * DAY_MS)) {
    return full(`the reconciliation is due (every ${settings.reconcileEveryDays} days)`);
  }
  const since = new Date(Date.parse(previous.startedAt) - INCREMENTAL_OVERLAP_MS).toISOString();
  return { kind: 'changes', since, lastFullAt: before.lastFullAt, settingsKey };
}

/** The listing key of an incremental run's one walk over every listing. */
export const CHANGES_LISTING = 'changes';

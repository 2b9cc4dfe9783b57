/** What a backup tells as it goes (progress, JSON lines). */
export type BackupEvent =
  | {
      kind: 'listed';
      listed: number;
      enqueued: number;
      totalListed: number;
      totalEnqueued: number;
      enqueuedBytes: number;
    }
  | { kind: 'waiting'; until: Date }
  | { kind: 'bytes'; count: number }
  | {
      kind: 'asset';
      id: string;
      outcome: 'replicated' | 'skipped' | 'gone' | 'failed';
      bytes?: number;
      error?: string;
      /** Where the asset's file is (or would be) inside the folder. */
      path?: string;
    }
  | { kind: 'pruned'; key: string };

export interface BackupSummary {
  dest: string;
  runId?: string;
  status: 'completed' | 'paused' | 'dry-run';
  /** When a run (or a dry run) stopped at the Admin API limit may go on. */
  resumeAt?: string;
  listed: number;
  toTransfer: number;
  toTransferBytes: number;
  transferred: number;
  transferredBytes: number;
  unchanged: number;
  deletedAtSource: number;
  failed: Array<{ id: string; error: string }>;
  pruned: string[];
  manifest?: string;
  /** What the run listed: the whole library, or only what changed since the last run. */
  listing?: 'full' | 'changes';
  /** Copies made in this run whose bytes could only be checked by their count (no etag listed). */
  verifiedBySize: number;
  /** Earlier size-only copies whose MD5 an etag now confirmed, without downloading them. */
  verifiedLater: number;
  /** What this account's listing could not give (Search tier, no Search), one line each. */
  unavailable: string[];
}

export function emptySummary(dest: string, status: BackupSummary['status']): BackupSummary {
  return {
    dest,
    status,
    listed: 0,
    toTransfer: 0,
    toTransferBytes: 0,
    transferred: 0,
    transferredBytes: 0,
    unchanged: 0,
    deletedAtSource: 0,
    failed: [],
    pruned: [],
    verifiedBySize: 0,
    verifiedLater: 0,
    unavailable: [],
  };
}

/** Waits until `at` on the wall clock (tests pass their own). */
export const realSleepUntil = (at: Date) =>
  new Promise<void>((r) => setTimeout(r, Math.max(0, at.getTime() - Date.now())));

/** Where LocalObjectStore streams files before their rename; only `*.part` files are ours to clear. */
export const PARTIALS_DIR = 'tmp';

import type { Readable } from 'node:stream';
import type { ManifestEntry } from '../engine/manifest.js';

/** A final manifest of a backup run: the account as that run listed it. */
export interface BackupManifest {
  key: string;
  runId: string;
  /** When the run started (read from its id). */
  runAt: Date;
}

/** Where one asset's backed-up bytes are, and what they must be. */
export interface LocatedCopy {
  bytes: number;
  /** MD5 recorded when the copy was made. */
  md5?: string;
  /** The asset version the copy holds, when the store recorded it. */
  version?: number;
  /** S3 object version (for --as-of). */
  versionId?: string;
}

/** Port: a backup to restore from (the S3 bucket, or a folder written by backup or pull). */
export interface BackupReader {
  /** For messages: `s3://bucket` or the folder. */
  readonly description: string;
  /** Every final manifest, oldest first. */
  manifests(): Promise<BackupManifest[]>;
  readManifest(key: string): AsyncIterable<ManifestEntry>;
  /** The copy of `objectKey` (as it stood at `asOf` when given); undefined when there is none. */
  locate(objectKey: string, asOf?: Date): Promise<LocatedCopy | undefined>;
  open(objectKey: string, copy: LocatedCopy): Promise<Readable>;
  close(): void;
}

/** Which assets to restore. */
export interface RestoreSelection {
  prefix?: string;
  resourceType?: string;
  deliveryType?: string;
  publicIds?: string[];
  /** Only assets the backup saw deleted at the source (in an earlier manifest, gone from the latest). */
  deletedOnly?: boolean;
  /** Restore the backup as it stood at this date (its manifest and object versions). */
  asOf?: Date;
}

export type RestoreOutcome =
  'restored' | 'already-there' | 'skipped' | 'refused' | 'failed' | 'would-restore';

export interface RestoreEvent {
  kind: 'asset';
  id: string;
  outcome: RestoreOutcome;
  bytes: number;
  reason?: string;
}

export interface RestoreSummary {
  source: string;
  target: string;
  /** The manifest the selection came from. */
  runId: string;
  selected: number;
  selectedBytes: number;
  /** Uploaded and verified (etag and bytes equal the backup's MD5 and size). */
  restored: number;
  restoredBytes: number;
  /** Found at the target with the backed-up bytes (a rerun, or never lost): verified, not uploaded. */
  alreadyThere: number;
  skipped: Array<{ id: string; reason: string }>;
  /** Cloudinary refused the upload (too large for the plan, unsupported): its reason. */
  refused: Array<{ id: string; reason: string }>;
  failed: Array<{ id: string; reason: string }>;
  dryRun: boolean;
}

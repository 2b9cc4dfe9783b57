import type { ChangeField } from './notification.js';

/** What a removal records: the notification's time, the version it removed when told, where a rename went. */
export interface Removal {
  /** The notification's `X-Cld-Timestamp` (seconds). */
  at: number;
  version?: number;
  renamedTo?: string;
}

/**
 * Port: what notifications announced per asset, kept beside the asset's state so duplicates and
 * out-of-order deliveries never move an asset backwards. Each method is one conditional write.
 */
export interface NotificationLedger {
  /**
   * Records that `version` was announced at `at`; false when a newer version or a later removal was
   * announced, or this version is on the queue already.
   */
  claimVersion(id: string, version: number, at: number): Promise<boolean>;
  /** Records that `version` is on the work queue: announcing it again enqueues nothing. */
  markQueued(id: string, version: number): Promise<void>;
  /** Records a deletion or rename away; false when a newer version was announced (or, without a version, announced later). */
  claimRemoval(id: string, removal: Removal): Promise<boolean>;
  /** Keeps the latest change of tags, context or metadata; false for a change older than the one kept. */
  recordChange(id: string, field: ChangeField, at: number, change: Record<string, unknown>): Promise<boolean>;
}

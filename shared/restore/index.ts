export { BucketBackup } from './BucketBackup.js';
export { buildCatalog } from './catalog.js';
export type { Catalog } from './catalog.js';
export { FolderBackup } from './FolderBackup.js';
export { RestoreJournal } from './RestoreJournal.js';
export { DEFAULT_CHUNK_BYTES, runRestore } from './runRestore.js';
export type { RestoreOptions } from './runRestore.js';
export { judgeAnswer } from './verify.js';
export type {
  BackupManifest,
  BackupReader,
  LocatedCopy,
  RestoreEvent,
  RestoreOutcome,
  RestoreSelection,
  RestoreSummary,
} from './types.js';

export { checkArchived, restoreStateOf, type ArchiveStatus, type RestoreTier } from './archive.js';
export { decide, isArchived, Placer, type ListedObject, type LocalFile, type PullAction } from './decide.js';
export { findStaleFiles, removeStaleFiles } from './prune.js';
export { PULL_INDEX_FILE, PullIndex, type Md5Source, type PulledRecord } from './PullIndex.js';
export {
  decodeListedKey,
  listAll,
  runPull,
  type PullDeps,
  type PullFailure,
  type PullOptions,
  type PullSummary,
} from './pull.js';
export {
  checkDestination,
  readCloudFormationOutput,
  resolveBucket,
  type StackOutputReader,
} from './setup.js';
export { BandwidthLimit, parseByteRate } from './throttle.js';
export {
  adoptLocal,
  downloadObject,
  expectedMd5,
  partialPathFor,
  plainMd5Etag,
  verifyLocal,
} from './transfer.js';

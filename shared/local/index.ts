export { commitFile, fsyncDir, hashFile, removeFile } from './files.js';
export { LocalObjectStore, OBJECT_INDEX_FILE } from './LocalObjectStore.js';
export {
  assertNoSymlinkParents,
  foldPath,
  hashedRelativePath,
  MAX_RELATIVE_PATH_BYTES,
  MAX_SEGMENT_BYTES,
  openNoFollow,
  placeKey,
  prepareParentDirs,
  resolveInside,
  UNSAFE_DIR,
  unsafeKeyReason,
  UnsafePathError,
  type KeyPlacement,
} from './safePath.js';
export { inTransaction, loadSqlite, openDatabase } from './sqlite.js';
export { SqliteStateStore, STATE_FILE, type SqliteStateStoreOptions } from './SqliteStateStore.js';

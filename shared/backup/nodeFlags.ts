/**
 * V8 settings `npm run backup` runs with (package.json passes them to Node; the bench starts its
 * backup child with them too). A backup's live heap is small and flat with the library (the
 * listing waits for the copies), but its garbage is not: on a machine with much memory V8's
 * defaults let a 128 MB young generation and an old space of dead objects build up before
 * collecting them. These bound both; old space stays several times above what a backup keeps alive.
 */
export const BACKUP_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=16', '--max-old-space-size=128'];

import { BACKUP_NODE_FLAGS } from '../backup/nodeFlags.js';
import { exitWhenDone } from './args.js';
import { cliMain } from './main.js';
import { missingNodeFlags, relaunchWith, shouldRelaunch } from './relaunch.js';

// The entry of `cloudinary-backup` (dist/cli.js) and of the npm run aliases.
const args = process.argv.slice(2);
// A backup runs with the heap settings its memory is measured under (`npm run backup` passes them to
// Node; the installed command, started with none, starts itself again with them).
const missing = args[0] === 'backup' ? missingNodeFlags(BACKUP_NODE_FLAGS) : [];
exitWhenDone(
  shouldRelaunch(missing) ? await relaunchWith(missing, process.argv[1] ?? '', args) : await cliMain(args),
);

import { exitWhenDone } from './args.js';
import { cliMain } from './main.js';

// The entry of `cloudinary-backup` (dist/cli.js) and of the npm run aliases.
exitWhenDone(await cliMain(process.argv.slice(2)));

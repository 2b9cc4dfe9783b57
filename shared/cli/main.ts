import pkg from '../../package.json' with { type: 'json' };
import { formatHelp, runCli, UsageError, type CliStreams, type CommandSpec, type FlagSpecs } from './args.js';
import { BACKUP_COMMAND, backupMain } from './backup.js';
import { DEMO_COMMAND, demoMain } from './demo.js';
import { PULL_COMMAND, pullMain } from './pull.js';
import { REPLICATE_COMMAND, replicateMain } from './replicate.js';
import { RESTORE_COMMAND, restoreMain } from './restore.js';
import { RUN_NOW_COMMAND, runNowMain } from './runNow.js';
import { WEBHOOK_COMMAND, webhookMain } from './webhook.js';

/** The installed command's name (package.json `bin`). */
export const PROGRAM = 'cloudinary-backup';

type Main = (argv: readonly string[], streams: CliStreams, env: NodeJS.ProcessEnv) => Promise<number>;

/** Every subcommand, in the order help lists them; a new one is one line here. */
export const SUBCOMMANDS: Record<string, { spec: CommandSpec<FlagSpecs>; main: Main }> = {
  backup: { spec: BACKUP_COMMAND, main: backupMain },
  pull: { spec: PULL_COMMAND, main: pullMain },
  replicate: { spec: REPLICATE_COMMAND, main: replicateMain },
  'run-now': { spec: RUN_NOW_COMMAND, main: runNowMain },
  restore: { spec: RESTORE_COMMAND, main: restoreMain },
  webhook: { spec: WEBHOOK_COMMAND, main: webhookMain },
  demo: { spec: DEMO_COMMAND, main: demoMain },
};

/** Exit codes every subcommand keeps to (README, "The command"). */
const EXIT_CODES =
  'Exit codes: 0 done, 1 something failed (the output says what), 2 usage error, ' +
  '3 backup stopped at the Admin API limit with --no-wait (run it again later), 130 interrupted.';

function mainHelp(): string {
  const width = Math.max(...Object.keys(SUBCOMMANDS).map((name) => name.length)) + 2;
  const lines = [
    `Usage: ${PROGRAM} <command> [options]`,
    '',
    pkg.description,
    '',
    'Commands:',
    ...Object.entries(SUBCOMMANDS).map(
      ([name, { spec }]) => `  ${name.padEnd(width)}${/^[^.:]*/u.exec(spec.summary)?.[0]}.`,
    ),
    '',
    'Options:',
    `  --help     This help; ${PROGRAM} <command> --help shows a command's options.`,
    '  --version  The version.',
    '',
    EXIT_CODES,
  ];
  return `${lines.join('\n')}\n`;
}

/** A command's help as this program names it: `npm run pull --` becomes `cloudinary-backup pull`. */
function subcommandHelp(spec: CommandSpec<FlagSpecs>): string {
  const named = (text: string) =>
    text.replace(/npm run ([\w-]+)( \[?-- ?)?/gu, (_, name: string, gap?: string) =>
      gap?.includes('[') ? `${PROGRAM} ${name} [` : `${PROGRAM} ${name}${gap ? ' ' : ''}`,
    );
  return formatHelp({ ...spec, usage: named(spec.usage), examples: spec.examples?.map(named) });
}

/** Runs `cloudinary-backup <command> [options]`; returns the exit code. */
export async function cliMain(
  argv: readonly string[],
  streams: CliStreams = { stdout: process.stdout, stderr: process.stderr },
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const [first, ...rest] = argv;
  const command = first === undefined ? undefined : SUBCOMMANDS[first];
  if (command && first) {
    const flags = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
    // Through npm run, the command's own help already names `npm run <command>`.
    if (env.npm_lifecycle_event === first || !flags.some((arg) => arg === '--help' || arg === '-h'))
      return command.main(rest, streams, env);
    streams.stdout.write(subcommandHelp(command.spec));
    return 0;
  }
  return runCli(
    async () => {
      if (first === '--help' || first === '-h') streams.stdout.write(mainHelp());
      else if (first === '--version') streams.stdout.write(`${pkg.version}\n`);
      else if (first === undefined) {
        streams.stderr.write(mainHelp());
        return 2;
      } else {
        const known = Object.keys(SUBCOMMANDS).join(', ');
        throw new UsageError(`unknown command "${first}"; the commands are ${known}`);
      }
      return 0;
    },
    { name: PROGRAM, streams },
  );
}

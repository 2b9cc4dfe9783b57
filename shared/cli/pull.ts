import { pathToFileURL } from 'node:url';
import { createAwsClients } from '../aws/clients.js';
import { resolveBucket } from '../pull/setup.js';
import { runPull } from '../pull/pull.js';
import { parseByteRate } from '../pull/throttle.js';
import {
  asUsage,
  exitWhenDone,
  formatHelp,
  outputModeFor,
  parseArgs,
  runCli,
  UsageError,
  type CliStreams,
  type CommandSpec,
} from './args.js';

export const PULL_COMMAND = {
  usage: 'npm run pull -- --dest DIR [options]',
  summary:
    'Mirrors the backup bucket onto a local folder: downloads only what is new or changed, resumes ' +
    'interrupted files, verifies every byte against the recorded MD5, and never writes outside DIR.',
  flags: {
    dest: { type: 'string', valueName: 'DIR', description: 'Folder to mirror into (must exist).' },
    bucket: { type: 'string', valueName: 'NAME', env: 'BACKUP_BUCKET', description: 'Backup bucket.' },
    stack: {
      type: 'string',
      valueName: 'NAME',
      env: 'STACK_NAME',
      description: "Read the bucket from this stack's BucketName output.",
    },
    prefix: {
      type: 'string',
      valueName: 'P',
      description: 'Only keys starting with P (e.g. assets/image/).',
    },
    concurrency: {
      type: 'number',
      valueName: 'N',
      default: 4,
      range: [1, 64],
      description: 'Parallel downloads.',
    },
    dryRun: {
      type: 'boolean',
      description: 'Show what would be downloaded, restored or deleted; change nothing.',
    },
    delete: {
      type: 'boolean',
      description: 'Delete local files that are no longer in the bucket (inside DIR only).',
    },
    restoreArchived: {
      type: 'string',
      valueName: 'Bulk|Standard',
      impliedValue: 'Bulk',
      choices: ['Bulk', 'Standard'],
      description: 'Request restores of archived (Glacier) objects; a later run downloads them.',
    },
    restoreDays: {
      type: 'number',
      valueName: 'N',
      default: 7,
      range: [1, Infinity],
      description: 'Days a restored copy stays readable.',
    },
    verify: { type: 'boolean', description: 'Re-hash every local file and fetch again the corrupt ones.' },
    bwlimit: {
      type: 'string',
      valueName: 'RATE',
      description: 'Bandwidth limit for all downloads, e.g. 2M or 500k.',
    },
    json: { type: 'boolean', description: 'JSON lines on stdout (events and a summary), for scripts.' },
  },
  examples: [
    'npm run pull -- --dest /Volumes/Backup',
    'npm run pull -- --dest ~/cloudinary --bucket my-backup-bucket --dry-run --delete',
    'npm run pull -- --dest /mnt/backup --restore-archived=Standard',
    'npm run pull -- --dest /mnt/backup --verify --json > pull.log',
  ],
} satisfies CommandSpec<Record<string, import('./args.js').FlagSpec>>;

/** Runs `npm run pull` with these arguments; returns the exit code (0 ok, 1 failures, 2 usage, 130 interrupted). */
export async function pullMain(
  argv: readonly string[],
  streams: CliStreams = { stdout: process.stdout, stderr: process.stderr },
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  return runCli(
    async () => {
      const { flags } = parseArgs(argv, PULL_COMMAND);
      if (flags.help) {
        streams.stdout.write(formatHelp(PULL_COMMAND));
        return 0;
      }
      if (!flags.dest) throw new UsageError('--dest DIR is required: the folder to mirror the bucket into');
      const concurrency = flags.concurrency ?? 4;
      const restoreDays = flags.restoreDays ?? 7;
      const bwlimit = flags.bwlimit === undefined ? undefined : parseByteRate(flags.bwlimit);
      if (flags.bwlimit !== undefined && bwlimit === undefined) {
        throw new UsageError(`--bwlimit needs a rate such as 2M or 500k (got "${flags.bwlimit}")`);
      }
      const bucketChoice = { bucket: flags.bucket, stack: flags.stack };
      // Naming no bucket at all is a usage error; a stack without the output is not.
      if (!bucketChoice.bucket && !env.BACKUP_BUCKET && !bucketChoice.stack && !env.STACK_NAME)
        await asUsage(() => resolveBucket(bucketChoice, env));
      const bucket = await resolveBucket(bucketChoice, env);

      const out = streams.stdout as NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
      const abort = new AbortController();
      const onSignal = (): void => {
        if (abort.signal.aborted) process.exit(130);
        streams.stderr.write(
          '\nStopping: partial files are kept and the next run resumes them (Ctrl-C again to quit now).\n',
        );
        abort.abort();
      };
      process.on('SIGINT', onSignal);
      try {
        const summary = await runPull(
          {
            dest: flags.dest,
            bucket,
            prefix: flags.prefix,
            concurrency,
            dryRun: flags.dryRun,
            delete: flags.delete,
            restoreArchived: flags.restoreArchived as 'Bulk' | 'Standard' | undefined,
            restoreDays,
            verify: flags.verify,
            bwlimit,
            signal: abort.signal,
          },
          { s3: createAwsClients(env).s3, out, mode: outputModeFor(out, flags.json) },
        );
        if (summary.interrupted) return 130;
        return summary.failed > 0 ? 1 : 0;
      } finally {
        process.off('SIGINT', onSignal);
      }
    },
    { name: 'pull', streams },
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  exitWhenDone(await pullMain(process.argv.slice(2)));
}

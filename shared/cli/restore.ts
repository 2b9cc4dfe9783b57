import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createAwsClients } from '../aws/clients.js';
import { parseCloudinaryUrl, type CloudinaryCredentials } from '../config.js';
import { formatBytes, ProgressReporter } from '../progress.js';
import { resolveBucket } from '../pull/setup.js';
import { BucketBackup } from '../restore/BucketBackup.js';
import { FolderBackup } from '../restore/FolderBackup.js';
import { runRestore } from '../restore/runRestore.js';
import type { BackupReader, RestoreEvent, RestoreSummary } from '../restore/types.js';
import {
  asUsage,
  exitWhenDone,
  formatHelp,
  outputModeFor,
  parseArgs,
  runCli,
  UsageError,
  writeJsonLine,
  type CliStreams,
  type CommandSpec,
  type FlagSpec,
} from './args.js';

export const RESTORE_COMMAND = {
  usage: 'npm run restore -- (--from DIR | --bucket NAME | --stack NAME) [options]',
  summary:
    'Puts a backup back into the Cloudinary product environment CLOUDINARY_URL names (the same one or ' +
    'another): each asset with its public id, resource and delivery type, tags, context and structured ' +
    'metadata, verified against the backed-up MD5 and size. Existing assets are kept unless --overwrite; ' +
    'a rerun skips what is already restored.',
  flags: {
    from: {
      type: 'string',
      valueName: 'DIR',
      description: 'Restore from a folder written by npm run backup or npm run pull.',
    },
    bucket: {
      type: 'string',
      valueName: 'NAME',
      env: 'BACKUP_BUCKET',
      description: 'Restore from the backup bucket.',
    },
    stack: {
      type: 'string',
      valueName: 'NAME',
      env: 'STACK_NAME',
      description: "Restore from the bucket named by this stack's BucketName output.",
    },
    prefix: {
      type: 'string',
      valueName: 'P',
      description: 'Only public ids starting with P (e.g. photos/2024/).',
    },
    resourceType: {
      type: 'string',
      choices: ['image', 'video', 'raw'],
      description: 'Only this resource type.',
    },
    type: {
      type: 'string',
      valueName: 'TYPE',
      description: 'Only this delivery type (upload, private, authenticated).',
    },
    publicId: {
      type: 'string',
      valueName: 'ID',
      description: 'Only this public id (repeat the option for several).',
    },
    deletedOnly: {
      type: 'boolean',
      description: 'Only assets the backup saw deleted at Cloudinary (undo a deletion).',
    },
    asOf: {
      type: 'string',
      valueName: 'DATE',
      description:
        'The backup as it stood at DATE (ISO date or time): its manifest and the object versions then current (bucket only).',
    },
    overwrite: {
      type: 'boolean',
      description: 'Replace assets that exist at the target (kept and reported by default).',
    },
    dryRun: { type: 'boolean', description: 'Show what would be restored; upload nothing.' },
    concurrency: { type: 'number', valueName: 'N', default: 4, description: 'Parallel uploads.' },
    journal: {
      type: 'string',
      valueName: 'FILE',
      description:
        'Where verified restores are remembered for reruns (default .cloudinary-restore/<cloud>.jsonl).',
    },
    json: { type: 'boolean', description: 'JSON lines on stdout (events and a summary), for scripts.' },
  },
  examples: [
    'CLOUDINARY_URL=cloudinary://KEY:SECRET@CLOUD npm run restore -- --from /Volumes/Backup/cloudinary --deleted-only',
    'npm run restore -- --stack CloudinaryBackup --prefix photos/2024/ --dry-run',
    'npm run restore -- --bucket my-backup-bucket --as-of 2026-03-01 --public-id photos/cat --public-id photos/dog',
  ],
} satisfies CommandSpec<Record<string, FlagSpec>>;

/** Every value of a repeatable string option (the parser keeps only the last). */
function allValues(argv: readonly string[], name: string): string[] {
  const values: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') break;
    if (arg === name && argv[i + 1] !== undefined) values.push(argv[++i] ?? '');
    else if (arg.startsWith(`${name}=`)) values.push(arg.slice(name.length + 1));
  }
  return values;
}

function parseDate(text: string): Date {
  const date = new Date(/^\d{4}-\d{2}-\d{2}$/u.test(text) ? `${text}T23:59:59.999Z` : text);
  if (Number.isNaN(date.getTime())) {
    throw new UsageError(`--as-of needs a date such as 2026-03-01 or 2026-03-01T12:00:00Z (got "${text}")`);
  }
  return date;
}

export function formatRestoreSummary(s: RestoreSummary): string {
  const lines: string[] = [];
  if (s.dryRun) {
    lines.push(
      `Dry run: ${s.selected} assets (${formatBytes(s.selectedBytes)}) from ${s.source} (backup ${s.runId}) ` +
        `would be restored into "${s.target}"; ${s.alreadyThere} already restored by an earlier run.`,
    );
  } else {
    lines.push(
      `Restored from ${s.source} (backup ${s.runId}) into "${s.target}": ${s.restored} of ${s.selected} assets ` +
        `uploaded and verified (${formatBytes(s.restoredBytes)}), ${s.alreadyThere} already there, ` +
        `${s.skipped.length} skipped, ${s.refused.length} refused, ${s.failed.length} failed.`,
    );
  }
  for (const [label, list] of [
    ['skipped', s.skipped],
    ['refused', s.refused],
    ['failed', s.failed],
  ] as const) {
    for (const item of list.slice(0, 20)) lines.push(`  ${label}: ${item.id}: ${item.reason}`);
    if (list.length > 20) lines.push(`  … and ${list.length - 20} more ${label} (see --json).`);
  }
  if (s.selected === 0) lines.push('Nothing matched the selection.');
  return lines.join('\n');
}

async function openSource(
  flags: { from?: string; bucket?: string; stack?: string; asOf?: string },
  env: NodeJS.ProcessEnv,
): Promise<BackupReader> {
  if (flags.from !== undefined) {
    if (flags.bucket !== undefined || flags.stack !== undefined) {
      throw new UsageError('name one source: --from DIR, or --bucket/--stack, not both');
    }
    if (flags.asOf !== undefined) {
      throw new UsageError(
        "--as-of reads the bucket's version history; a folder holds one version of each file (use --bucket or --stack)",
      );
    }
    return asUsage(() => FolderBackup.open(flags.from ?? ''));
  }
  const choice = { bucket: flags.bucket, stack: flags.stack };
  if (!choice.bucket && !env.BACKUP_BUCKET && !choice.stack && !env.STACK_NAME) {
    throw new UsageError('name the backup to restore from: --from DIR, --bucket NAME or --stack NAME');
  }
  return new BucketBackup(createAwsClients(env).s3, await resolveBucket(choice, env));
}

/** Runs `npm run restore` with these arguments; returns the exit code (0 ok, 1 failures, 2 usage). */
export async function restoreMain(
  argv: readonly string[],
  streams: CliStreams = { stdout: process.stdout, stderr: process.stderr },
  env: NodeJS.ProcessEnv = process.env,
  options: { credentials?: CloudinaryCredentials; title?: string } = {},
): Promise<number> {
  return runCli(
    async () => {
      const { flags } = parseArgs(argv, RESTORE_COMMAND);
      if (flags.help) {
        streams.stdout.write(formatHelp(RESTORE_COMMAND));
        return 0;
      }
      const concurrency = flags.concurrency ?? 4;
      if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
        throw new UsageError('--concurrency must be a whole number from 1 to 64');
      }
      const asOf = flags.asOf === undefined ? undefined : parseDate(flags.asOf);
      const credentials =
        options.credentials ?? (await asUsage(() => parseCloudinaryUrl(env.CLOUDINARY_URL)));
      const reader = await openSource(flags, env);
      const out = streams.stdout as NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
      const mode = outputModeFor(out, flags.json);
      if (options.title && mode !== 'json') out.write(`${options.title}\n`);
      const progress = new ProgressReporter({ stream: out, mode, label: 'restore' });
      const onEvent = (event: RestoreEvent): void => {
        const { kind: _kind, ...fields } = event;
        progress.event('asset', fields);
        if (event.outcome === 'restored') progress.fileDone();
        else if (event.outcome === 'failed' || event.outcome === 'refused') {
          progress.message(`${event.outcome}: ${event.id}: ${event.reason ?? ''}`, { id: event.id });
        }
      };
      let summary: RestoreSummary;
      try {
        summary = await runRestore({
          reader,
          credentials,
          selection: {
            prefix: flags.prefix,
            resourceType: flags.resourceType,
            deliveryType: flags.type,
            publicIds: allValues(argv, '--public-id'),
            deletedOnly: flags.deletedOnly,
            asOf,
          },
          journalFile: resolve(
            flags.journal ?? join('.cloudinary-restore', `${credentials.cloudName}.jsonl`),
          ),
          overwrite: flags.overwrite,
          dryRun: flags.dryRun,
          concurrency,
          onEvent,
          onBytes: (count) => progress.addBytes(count),
          onSelected: (files, bytes) => progress.setTotals({ files, bytes }),
        });
      } finally {
        progress.stop();
      }
      if (mode === 'json') writeJsonLine(out, { event: 'summary', ...summary });
      else out.write(`${formatRestoreSummary(summary)}\n`);
      return summary.failed.length + summary.refused.length > 0 ? 1 : 0;
    },
    { name: 'restore', streams },
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  exitWhenDone(await restoreMain(process.argv.slice(2)));
}

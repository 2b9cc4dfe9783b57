import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  DEFAULT_BACKUP_CONCURRENCY,
  runBackup,
  type BackupEvent,
  type BackupSummary,
} from '../backup/runBackup.js';
import { parseCloudinaryUrl, settingsFromEnv, type CloudinaryCredentials } from '../config.js';
import { formatBytes, formatDuration, ProgressReporter } from '../progress.js';
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

export const BACKUP_COMMAND = {
  usage: 'npm run backup -- --dest DIR [options]',
  summary:
    'Backs up a Cloudinary account straight into a local folder, no AWS needed: every original, ' +
    'verified byte for byte, resumable after a crash, with a manifest of every asset and its metadata.',
  flags: {
    dest: { type: 'string', valueName: 'DIR', description: 'Folder to back up into (created if missing).' },
    concurrency: {
      type: 'number',
      valueName: 'N',
      default: DEFAULT_BACKUP_CONCURRENCY,
      range: [1, 64],
      description: 'Parallel downloads.',
    },
    dryRun: { type: 'boolean', description: 'List and compare only: show what would be copied or pruned.' },
    delete: {
      type: 'boolean',
      description: 'Remove local copies of assets deleted at Cloudinary (kept by default).',
    },
    wait: {
      type: 'boolean',
      default: true,
      description:
        'Wait out a spent Admin API budget with a countdown (default); --no-wait stops with a resumable checkpoint.',
    },
    json: { type: 'boolean', description: 'JSON lines on stdout (events and a summary), for scripts.' },
    redrive: {
      type: 'boolean',
      description:
        'Retry quarantined assets too (permanent failures, otherwise retried only when their version or size changes).',
    },
  },
  examples: [
    'CLOUDINARY_URL=cloudinary://KEY:SECRET@CLOUD npm run backup -- --dest /Volumes/Backup/cloudinary',
    'npm run backup -- --dest ./backup --dry-run',
    'npm run backup -- --dest ./backup --no-wait --json > backup.log',
  ],
} satisfies CommandSpec<Record<string, FlagSpec>>;

/** Exit code of a run that stopped at a spent Admin API budget with --no-wait: run again later. */
export const EXIT_PAUSED = 3;

export interface BackupCliOptions {
  credentials?: CloudinaryCredentials;
  /** Heading printed before the run (the demo names its runs). */
  title?: string;
}

/** Shows a backup's progress and summary on a terminal, a pipe, or as JSON lines. */
export function backupDisplay(
  out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number },
  json?: boolean,
  clock: { now?: () => number } = {},
) {
  const mode = outputModeFor(out, json);
  const progress = new ProgressReporter({ stream: out, mode, label: 'backup', now: clock.now });
  let countdown: NodeJS.Timeout | undefined;
  // On a terminal the status line stands in for the bar: show it only while there is nothing else to show.
  let showing: 'listing' | 'countdown' | undefined;
  let transferring = false;
  const show = (what: typeof showing, text?: string): void => {
    showing = what;
    progress.status(text);
  };
  const stopCountdown = (): void => {
    clearInterval(countdown);
    countdown = undefined;
  };
  const onEvent = (event: BackupEvent): void => {
    switch (event.kind) {
      case 'listed':
        stopCountdown();
        // The status first: a line drawn by setTotals must show this page's count, not the last one's.
        if (transferring) show(undefined);
        else show('listing', `listing… ${event.totalListed.toLocaleString('en-US')} assets seen`);
        progress.setTotals({ files: event.totalEnqueued, bytes: event.enqueuedBytes || undefined });
        break;
      case 'bytes':
        transferring = true;
        if (showing === 'listing') show(undefined);
        progress.addBytes(event.count);
        break;
      case 'asset':
        transferring = true;
        if (showing === 'listing') show(undefined);
        if (event.outcome === 'failed')
          progress.message(`failed: ${event.id}: ${event.error}`, { id: event.id });
        progress.event('asset', event);
        if (event.outcome === 'replicated') progress.fileDone();
        break;
      case 'waiting': {
        const tick = () => {
          const left = Math.max(0, Math.round((event.until.getTime() - Date.now()) / 1000));
          show('countdown', `Admin API budget spent: continuing in ${formatDuration(left)}`);
        };
        stopCountdown();
        // The status first: the message below redraws the line at once, showing the countdown.
        tick();
        progress.message(
          `Cloudinary's hourly Admin API budget is spent; waiting until ${event.until.toISOString()}.`,
          {
            until: event.until.toISOString(),
          },
        );
        countdown = setInterval(tick, 1000);
        countdown.unref();
        break;
      }
      case 'pruned':
        progress.message(`pruned ${event.key}`, { key: event.key });
        break;
    }
  };
  const finish = (summary: BackupSummary): void => {
    stopCountdown();
    // Piped, status lines come every few seconds: end the listing's with its final count.
    if (mode === 'plain' && showing === 'listing') out.write(`${progress.statusLine()}\n`);
    show(undefined);
    progress.stop();
    if (mode === 'json') {
      writeJsonLine(out, { event: 'summary', ...summary });
      return;
    }
    out.write(`${formatSummary(summary)}\n`);
  };
  return { onEvent, finish, progress };
}

export function formatSummary(s: BackupSummary): string {
  const lines: string[] = [];
  if (s.status === 'dry-run' && s.resumeAt !== undefined) {
    lines.push(
      `Dry run of ${s.dest} stopped at the Admin API limit (--no-wait) after ${s.listed} assets: so far ` +
        `${s.toTransfer} would be copied (${formatBytes(s.toTransferBytes)}), ${s.unchanged} unchanged. ` +
        `Run it again after ${s.resumeAt}, or without --no-wait to wait for the budget and see the whole account.`,
    );
    return lines.join('\n');
  }
  if (s.status === 'dry-run') {
    lines.push(
      `Dry run of ${s.dest}: ${s.listed} assets at Cloudinary, ${s.toTransfer} would be copied ` +
        `(${formatBytes(s.toTransferBytes)}), ${s.unchanged} unchanged, ${s.deletedAtSource} gone from Cloudinary` +
        (s.pruned.length ? `, ${s.pruned.length} local copies would be pruned.` : '.'),
    );
    lines.push(...s.unavailable.map((note) => `Unavailable: ${note}`));
    return lines.join('\n');
  }
  lines.push(
    `Backed up into ${s.dest}: ${s.listed} assets listed, ${s.transferred} copied (${formatBytes(
      s.transferredBytes,
    )}), ${s.unchanged} already up to date, ${s.failed.length} failed.`,
  );
  if (s.deletedAtSource > 0 && s.pruned.length === 0) {
    lines.push(
      `${s.deletedAtSource} assets were deleted at Cloudinary; their copies are kept (use --delete to prune).`,
    );
  } else if (s.deletedAtSource > 0) {
    lines.push(
      `${s.deletedAtSource} assets were deleted at Cloudinary; ${s.pruned.length} local copies pruned (--delete).`,
    );
  } else if (s.pruned.length > 0) {
    // Deleted at Cloudinary in an earlier run, kept until this --delete.
    lines.push(`${s.pruned.length} local copies of assets deleted at Cloudinary pruned (--delete).`);
  }
  if (s.manifest) {
    const what =
      s.listing === 'changes'
        ? 'Manifest of the assets that changed since the last run (the last full listing lists the rest)'
        : 'Manifest of every asset with its tags, context and metadata';
    lines.push(`${what}: ${join(s.dest, ...s.manifest.split('/'))}`);
  }
  lines.push(...s.unavailable.map((note) => `Unavailable: ${note}`));
  if (s.verifiedBySize > 0) {
    lines.push(
      `${s.verifiedBySize} copies were verified by size only (the listing gave no MD5 to check them against); ` +
        'a later run that gets etags from Search checks them and copies again any that differ.',
    );
  }
  if (s.verifiedLater > 0) {
    lines.push(`${s.verifiedLater} earlier copies verified by size only now match Cloudinary's MD5.`);
  }
  for (const f of s.failed.slice(0, 20)) lines.push(`  failed: ${f.id}: ${f.error}`);
  if (s.failed.length > 20) lines.push(`  … and ${s.failed.length - 20} more (see --json).`);
  if (s.status === 'paused') {
    lines.push(
      `Stopped at the Admin API limit (--no-wait). Run the same command again after ${s.resumeAt}: it continues where it stopped.`,
    );
  }
  return lines.join('\n');
}

/** Runs `npm run backup` with these arguments; returns the exit code. */
export async function backupMain(
  argv: readonly string[],
  streams: CliStreams = { stdout: process.stdout, stderr: process.stderr },
  env: NodeJS.ProcessEnv = process.env,
  options: BackupCliOptions = {},
): Promise<number> {
  return runCli(
    async () => {
      const { flags } = parseArgs(argv, BACKUP_COMMAND);
      if (flags.help) {
        streams.stdout.write(formatHelp(BACKUP_COMMAND));
        return 0;
      }
      if (!flags.dest) throw new UsageError('--dest DIR is required: the folder to back up into');
      const concurrency = flags.concurrency ?? DEFAULT_BACKUP_CONCURRENCY;
      const credentials =
        options.credentials ?? (await asUsage(() => parseCloudinaryUrl(env.CLOUDINARY_URL)));
      const out = streams.stdout as NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
      const display = backupDisplay(out, flags.json);
      if (options.title && !flags.json) out.write(`${options.title}\n`);
      const summary = await runBackup({
        dest: flags.dest,
        credentials,
        settings: settingsFromEnv(env),
        concurrency,
        dryRun: flags.dryRun,
        prune: flags.delete,
        wait: flags.wait ?? true,
        redrive: flags.redrive === true,
        onEvent: display.onEvent,
      });
      display.finish(summary);
      if (summary.failed.length > 0) return 1;
      return summary.resumeAt !== undefined ? EXIT_PAUSED : 0;
    },
    { name: 'backup', streams },
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  exitWhenDone(await backupMain(process.argv.slice(2)));
}

import { pathToFileURL } from 'node:url';
import {
  asUsage,
  parseCloudinaryUrl,
  ProgressReporter,
  formatDuration,
  formatHelp,
  outputModeFor,
  parseArgs,
  runCli,
  writeJsonLine,
  type CliStreams,
  type CommandSpec,
  type FlagSpec,
  exitWhenDone,
} from '../index.js';
import { runCycle } from '../../functions/cycle.js';
import { envFromStack } from './stackEnv.js';

export const REPLICATE_COMMAND = {
  usage: 'npm run replicate -- [--stack NAME] [options]',
  summary:
    'Runs one whole replication cycle from this machine with the deployed handlers: lists Cloudinary, ' +
    'fills the work queue, and drains it the way Lambda does, into the backup bucket. Settings come ' +
    'from the environment (CLOUDINARY_URL, BUCKET_NAME, TABLE_NAME, QUEUE_URL, DLQ_URL, AWS_*) or the stack.',
  flags: {
    stack: {
      type: 'string',
      valueName: 'NAME',
      env: 'STACK_NAME',
      description: "Read the bucket, table, queues and secret from this stack's outputs.",
    },
    concurrency: {
      type: 'number',
      valueName: 'N',
      default: 2,
      range: [1, 64],
      alias: 'workers',
      description: 'Parallel queue consumers, like concurrent Lambda invocations.',
    },
    json: { type: 'boolean', description: 'JSON lines on stdout, for scripts.' },
    redrive: {
      type: 'boolean',
      description:
        'Retry quarantined assets too (permanent failures, otherwise retried only when their version or size changes).',
    },
  },
  examples: [
    'npm run replicate -- --stack CloudinaryS3Replicator',
    'npm run replicate -- --redrive',
    'AWS_ENDPOINT_URL=http://127.0.0.1:5000 npm run replicate',
  ],
} satisfies CommandSpec<Record<string, FlagSpec>>;

const copies = (n: number) => `${n} ${n === 1 ? 'copy' : 'copies'}`;

export async function replicateMain(
  argv: readonly string[],
  streams: CliStreams = { stdout: process.stdout, stderr: process.stderr },
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  return runCli(
    async () => {
      const { flags } = parseArgs(argv, REPLICATE_COMMAND);
      if (flags.help) {
        streams.stdout.write(formatHelp(REPLICATE_COMMAND));
        return 0;
      }
      const stack = flags.stack ?? env.STACK_NAME;
      if (stack) await envFromStack(stack, env);
      // A deployed stack's parameter or secret is read later; a workstation's CLOUDINARY_URL is checked
      // before anything runs.
      const stored = env.CLOUDINARY_PARAMETER?.trim() || env.CLOUDINARY_SECRET_ID?.trim();
      if (!stored) await asUsage(() => parseCloudinaryUrl(env.CLOUDINARY_URL));
      const out = streams.stdout as NodeJS.WritableStream & { isTTY?: boolean };
      const mode = outputModeFor(out, flags.json);
      const progress = new ProgressReporter({ stream: out, mode, label: 'replicate' });
      let listed = 0;
      let enqueued = 0;
      let handled = 0;
      const summary = await runCycle({
        workers: flags.concurrency ?? 2,
        redrive: flags.redrive === true,
        onEvent: (event) => {
          if (event.kind === 'continuing') {
            const { run } = event;
            const left = run.counters.enqueued - (run.counters.settled ?? 0);
            progress.setTotals({ files: left });
            progress.message(`Finishing run ${run.runId}, interrupted with ${copies(left)} left.`, {
              runId: run.runId,
              left,
            });
          } else if (event.kind === 'pending') {
            const { pending } = event;
            const text =
              `waiting for ${copies(pending.left)} of run ${pending.runId}: ${pending.inFlight} in flight ` +
              `(a stopped worker's come back within ${pending.inFlightSeconds} s), ${pending.delayed} retrying later`;
            // Piped output has no status line: say it once per change instead of staying silent.
            if (mode === 'plain') progress.message(text);
            else progress.status(text);
            progress.event('pending', { ...pending });
          } else if (event.kind === 'enumerated') {
            listed = event.result.counters.listed;
            enqueued = event.result.counters.enqueued;
            progress.setTotals({ files: enqueued });
            progress.status(`listed ${listed} assets, ${enqueued} to copy`);
            progress.event('enumerated', { ...event.result });
          } else if (event.kind === 'waiting') {
            const seconds = Math.max(0, Math.round((event.until.getTime() - Date.now()) / 1000));
            progress.message(`Admin API budget spent: the listing continues in ${formatDuration(seconds)}.`, {
              until: event.until.toISOString(),
            });
          } else if (event.kind === 'bytes') {
            progress.addBytes(event.count);
          } else {
            handled += event.received - event.failed;
            for (let i = 0; i < event.received - event.failed; i++) progress.fileDone();
            progress.event('batch', { ...event });
          }
        },
      });
      progress.status(undefined);
      progress.stop();
      const run = summary.run;
      const counters = run?.counters;
      if (mode === 'json') writeJsonLine(out, { event: 'summary', ...summary });
      else {
        const continued = summary.continued;
        if (continued) {
          out.write(
            `Interrupted run ${continued.runId} finished: ${continued.counters.replicated} replicated ` +
              `(${continued.counters.bytes} bytes), ${continued.counters.failed} dead-lettered.\n`,
          );
        }
        out.write(
          `Run ${summary.runId} ${run?.phase ?? 'unknown'}: ${counters?.listed ?? listed} listed, ` +
            `${counters?.enqueued ?? enqueued} enqueued, ${counters?.replicated ?? handled} replicated ` +
            `(${counters?.bytes ?? 0} bytes), ${counters?.failed ?? 0} dead-lettered, ` +
            `${counters?.deleted ?? 0} marked deleted at the source.\n`,
        );
        for (const note of summary.unavailable) out.write(`Unavailable: ${note}\n`);
      }
      // Dead letters of an interrupted run this cycle finished count as this cycle's failures too.
      const failed = (counters?.failed ?? 0) + (summary.continued?.counters.failed ?? 0);
      return run?.phase === 'completed' && failed === 0 ? 0 : 1;
    },
    { name: 'replicate', streams },
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  exitWhenDone(await replicateMain(process.argv.slice(2)));
}

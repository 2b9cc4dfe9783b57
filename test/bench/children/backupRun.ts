/** One `runBackup` (the engine behind `npm run backup`) into a folder, timed in its own process. */
import { runBackup } from '../../../shared/backup/runBackup.js';
import { parseCloudinaryUrl, settingsFromEnv } from '../../../shared/config.js';
import { failChild, receiveJob } from '../support/child.js';
import type { BackupJob, TransferDone } from './protocol.js';
import { cpuSince, peakRss } from './util.js';

async function main(): Promise<void> {
  const job = await receiveJob<BackupJob>();
  const cpu = process.cpuUsage();
  const started = performance.now();
  const summary = await runBackup({
    dest: job.dest,
    credentials: parseCloudinaryUrl(job.cloudinaryUrl),
    settings: settingsFromEnv({}),
    concurrency: job.concurrency,
  });
  const done: TransferDone = {
    kind: 'done',
    seconds: (performance.now() - started) / 1000,
    files: summary.transferred,
    bytes: summary.transferredBytes,
    cpu: cpuSince(cpu),
    peakRss: peakRss(),
    failed: summary.failed.length,
    unchanged: summary.unchanged,
  };
  process.send?.(done, () => process.exit(0));
}

main().catch(failChild);

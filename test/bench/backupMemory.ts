import { BACKUP_NODE_FLAGS } from '../../shared/backup/nodeFlags.js';
import { generateLibrary, startCloudinaryDouble } from '../double/index.js';
import type { TransferDone } from './children/protocol.js';
import { runChild } from './backupRuns.js';
import type { BenchContext } from './context.js';
import type { Metric, TargetCheck } from './results.js';
import { makeScratch, removeScratch } from './support/scratch.js';
import { mib, num, seconds, type Table } from './table.js';
import type { Mode } from './workloads.js';

const MiB = 1024 * 1024;
/** The target: a backup of 20,000 files peaks at 200 MB. */
export const BACKUP_PEAK_TARGET = 200 * MiB;
const FULL_FILES = 20_000;

export interface BackupMemoryRun {
  files: number;
  transfer: TransferDone;
}

/** Peak RSS (VmHWM) of `npm run backup`'s engine copying many tiny files: what grows with the library. */
export async function measureBackupMemory(context: BenchContext, mode: Mode): Promise<BackupMemoryRun> {
  const files = mode === 'quick' ? 5_000 : FULL_FILES;
  const library = generateLibrary({
    seed: 'bench-backup-memory',
    counts: { image: { upload: files } },
    sizes: { image: [1_000, 4_000] },
  });
  const double = await startCloudinaryDouble({ library, rateLimitPerHour: 1_000_000 });
  const scratch = await makeScratch('backup-memory');
  try {
    context.log(`memory: a backup of ${num(files)} files`);
    const transfer = await runChild(
      context,
      'backupRun.ts',
      { cloudinaryUrl: double.cloudinaryUrl, dest: scratch },
      `backup-memory-${files}`,
      BACKUP_NODE_FLAGS,
    );
    return { files, transfer };
  } finally {
    await removeScratch(scratch);
    await double.close();
  }
}

export function backupMemoryReport(run: BackupMemoryRun): {
  table: Table;
  metric: Metric;
  target: TargetCheck;
} {
  const { transfer } = run;
  return {
    table: {
      title: '2b. Memory — `npm run backup` (runBackup in a child process) copying many files of 1–4 KB',
      head: ['Files', 'Copied', 'Time', 'Files/s', 'Peak RSS (VmHWM)'],
      rows: [
        [
          num(run.files),
          num(transfer.files),
          seconds(transfer.seconds),
          num(transfer.files / transfer.seconds, 1),
          mib(transfer.peakRss),
        ],
      ],
      notes: [
        'VmHWM covers the whole child, module loading (tsx) included.',
        `The child runs with the Node settings of \`npm run backup\`: ${BACKUP_NODE_FLAGS.join(' ')}.`,
      ],
    },
    metric: {
      key: 'memory.backup-files.peak',
      label: `Backup peak RSS, ${num(run.files)} files`,
      value: transfer.peakRss / MiB,
      unit: 'MiB',
      better: 'lower',
    },
    target: {
      target: `Backup peak RSS ≤ ${mib(BACKUP_PEAK_TARGET)} for ${num(FULL_FILES)} files`,
      measured: `${mib(transfer.peakRss)} for ${num(run.files)} files`,
      met: run.files >= FULL_FILES ? transfer.peakRss <= BACKUP_PEAK_TARGET : undefined,
    },
  };
}

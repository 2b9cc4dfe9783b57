import { BACKUP_NODE_FLAGS } from '../../shared/backup/nodeFlags.js';
import { DEFAULT_BACKUP_CONCURRENCY } from '../../shared/backup/runBackup.js';
import { BASELINE_CONCURRENCY, backupRuns, type BackupRun } from './backupRuns.js';
import type { BenchContext } from './context.js';
import { PIPELINE_CONCURRENCY, PIPELINE_WORKERS, pipelineRun, type PipelineRun } from './pipelineRun.js';
import type { Metric, SectionResult, TargetCheck } from './results.js';
import type { MeterReading } from './support/requestMeter.js';
import { mb, num, pct, seconds, type Table } from './table.js';

/** The issue's targets: photos and videos at 80% of the baseline's MB/s, small files at 50% of its files/s. */
export const TARGET_RATIO = 0.8;
export const TARGET_SMALL_FILES_RATIO = 0.5;

function rate(count: number, time: number): number {
  return time > 0 ? count / time : 0;
}

function backupRow(run: BackupRun): string[] {
  const { full, baseline } = run;
  return [
    run.label,
    num(run.assets),
    mb(run.bytes),
    seconds(full.seconds),
    num(rate(run.assets, full.seconds), 1),
    num(rate(run.bytes / 1e6, full.seconds), 1),
    num(rate(run.assets, baseline.seconds), 1),
    num(rate(run.bytes / 1e6, baseline.seconds), 1),
    pct(baseline.seconds / full.seconds),
    `${num(full.cpu.user + full.cpu.system, 1)} / ${num(baseline.cpu.user + baseline.cpu.system, 1)}`,
  ];
}

function pipelineRow(run: PipelineRun): string[] {
  const { full, baseline } = run;
  return [
    run.label,
    num(run.assets),
    mb(run.bytes),
    seconds(full.seconds),
    num(rate(run.assets, full.seconds), 1),
    num(rate(run.bytes / 1e6, full.seconds), 1),
    num(rate(run.assets, baseline.seconds), 1),
    num(rate(run.bytes / 1e6, baseline.seconds), 1),
    pct(baseline.seconds / full.seconds),
    `${num(full.cpuSeconds, 1)} / ${num(baseline.cpu.user + baseline.cpu.system, 1)}`,
  ];
}

const HEAD = [
  'Workload',
  'Assets',
  'MB',
  'Time',
  'Assets/s',
  'MB/s',
  'Base assets/s',
  'Base MB/s',
  'Ratio',
  'CPU s tool/base',
];

/** Where a cycle's wall time went: waiting on moto (any AWS request outstanding) or not. */
export function motoTimeTable(
  title: string,
  wallSeconds: number,
  reading: MeterReading,
  enumerateSeconds: number,
): Table {
  const share = (s: number) => pct(wallSeconds > 0 ? s / wallSeconds : undefined);
  const byService = new Map<string, { requests: number; seconds: number }>();
  for (const op of reading.operations) {
    const entry = byService.get(op.service) ?? { requests: 0, seconds: 0 };
    entry.requests += op.requests;
    entry.seconds += op.seconds;
    byService.set(op.service, entry);
  }
  return {
    title,
    head: ['Share of the wall time', 'Seconds', 'Share'],
    rows: [
      ['Whole cycle (wall)', seconds(wallSeconds), '100%'],
      [
        '  enumerate invocation (listing, diff, enqueue, manifest)',
        seconds(enumerateSeconds),
        share(enumerateSeconds),
      ],
      [
        '  waiting on moto (≥ 1 AWS request outstanding)',
        seconds(reading.busySeconds),
        share(reading.busySeconds),
      ],
      [
        '  not waiting on moto (our code, the double, long polls)',
        seconds(wallSeconds - reading.busySeconds),
        share(wallSeconds - reading.busySeconds),
      ],
      ...[...byService].map(([service, entry]) => [
        `  ${service}: ${num(entry.requests)} requests, summed latency`,
        seconds(entry.seconds),
        '',
      ]),
    ],
    notes: [
      'Summed latency adds up each request\'s own wait (overlapping requests each count); long polls are left out of "waiting".',
    ],
  };
}

export async function throughputSection(context: BenchContext): Promise<SectionResult> {
  const runs = await backupRuns(context);
  const pipeline = await pipelineRun(context);
  const metrics: Metric[] = [];
  const targets: TargetCheck[] = [];
  for (const run of runs) {
    const ratio = run.baseline.seconds / run.full.seconds;
    metrics.push(
      {
        key: `throughput.${run.workload}.assetsPerSecond`,
        label: `Backup ${run.workload}: assets/s`,
        value: rate(run.assets, run.full.seconds),
        unit: '/s',
        better: 'higher',
      },
      {
        key: `throughput.${run.workload}.mbPerSecond`,
        label: `Backup ${run.workload}: MB/s`,
        value: rate(run.bytes / 1e6, run.full.seconds),
        unit: 'MB/s',
        better: 'higher',
      },
      {
        key: `throughput.${run.workload}.ratio`,
        label: `Backup ${run.workload}: share of baseline`,
        value: ratio * 100,
        unit: '%',
        better: 'higher',
      },
    );
    if (run.workload === 'small') {
      const perSecond = rate(run.assets, run.full.seconds);
      targets.push({
        target: `Backup of small files ≥ ${pct(TARGET_SMALL_FILES_RATIO)} of the baseline's files/s`,
        measured: `${pct(ratio)} (${num(perSecond)} of ${num(rate(run.assets, run.baseline.seconds))} files/s)`,
        met: ratio >= TARGET_SMALL_FILES_RATIO,
      });
    } else {
      targets.push({
        target: `Backup of ${run.workload} ≥ ${pct(TARGET_RATIO)} of the baseline`,
        measured: `${pct(ratio)} (${num(rate(run.bytes / 1e6, run.full.seconds))} of ${num(rate(run.bytes / 1e6, run.baseline.seconds))} MB/s)`,
        met: ratio >= TARGET_RATIO,
      });
    }
  }
  metrics.push(
    {
      key: 'throughput.pipeline.assetsPerSecond',
      label: 'Pipeline into moto: assets/s',
      value: rate(pipeline.assets, pipeline.full.seconds),
      unit: '/s',
      better: 'higher',
    },
    {
      key: 'throughput.pipeline.mbPerSecond',
      label: 'Pipeline into moto: MB/s',
      value: rate(pipeline.bytes / 1e6, pipeline.full.seconds),
      unit: 'MB/s',
      better: 'higher',
    },
    {
      key: 'throughput.pipeline.motoShare',
      label: 'Pipeline: share of time waiting on moto',
      value: (pipeline.full.aws.busySeconds / pipeline.full.seconds) * 100,
      unit: '%',
      better: 'lower',
    },
  );
  const failures = runs.filter((r) => r.full.failed > 0 || r.full.files !== r.assets);
  const tables: Table[] = [
    {
      title: `1. Throughput — backup into a local folder (runBackup, its default ${DEFAULT_BACKUP_CONCURRENCY} at once) vs the physical baseline (plain HTTP → MD5 → file, ${BASELINE_CONCURRENCY} at once, one sync at the end)`,
      head: HEAD,
      rows: runs.map(backupRow),
      notes: [
        'Ratio = baseline time / tool time (the same bytes from the same double). Tool time includes listing; the baseline is given the URLs.',
        `Baseline: the faster of a run before and one after the tool's first (${runs.map((r) => `${r.workload} ${r.baselineRuns.map((t) => seconds(t)).join(' / ')}`).join(', ')}).`,
        `Tool: the faster of two full runs into fresh folders, one before and one after the second baseline (${runs.map((r) => `${r.workload} ${r.fullRuns.map((t) => seconds(t)).join(' / ')}`).join(', ')}).`,
        'Every run of a workload writes into its own folder, all removed when the workload ends.',
        `The tool's child runs with the Node settings of \`npm run backup\` (${BACKUP_NODE_FLAGS.join(' ')}).`,
        'Both make their files durable: the tool fsyncs files, folders and SQLite commits per batch; the baseline runs one `sync -f` at its end (timed).',
        'CPU s: user + system seconds of the tool process and of the baseline process (each its own child; the double serves from the bench process).',
        ...failures.map(
          (r) => `WARNING: ${r.workload}: ${r.full.failed} failed, ${r.full.files} of ${r.assets} copied.`,
        ),
      ],
    },
    {
      title: `1b. Throughput — the pipeline into S3 on moto (runCycle: ${PIPELINE_WORKERS} replicate invocations × ${PIPELINE_CONCURRENCY} assets) vs the plain client into S3 on the same moto (GET → MD5 → PutObject, ${PIPELINE_WORKERS * PIPELINE_CONCURRENCY} at once)`,
      head: HEAD,
      rows: [pipelineRow(pipeline)],
      notes: [
        'The pipeline runs in the bench process (with the double; CPU s is that process); moto is one Python process, far slower than S3.',
        `Copied ${pipeline.full.replicated} of ${pipeline.assets}, ${pipeline.full.failed} failed, ${pipeline.full.retried} retried; ` +
          `${pipeline.full.invocations.replicate} replicate invocations.` +
          (pipeline.meterComplete
            ? ''
            : ' WARNING: the handlers rebuilt their clients mid-run; AWS counts are incomplete.'),
      ],
    },
    motoTimeTable(
      '1c. Where the pipeline cycle spent its time',
      pipeline.full.seconds,
      pipeline.full.aws,
      pipeline.full.enumerateSeconds,
    ),
  ];
  return {
    name: 'throughput',
    tables,
    metrics,
    targets,
    data: { backup: runs, pipeline },
  };
}

import { generateLibrary, startCloudinaryDouble } from '../double/index.js';
import { backupMemoryReport, measureBackupMemory } from './backupMemory.js';
import type { ChildMessage, ReplicateJob, TransferDone } from './children/protocol.js';
import { procStatusBytes } from './children/util.js';
import { profileFlags, type BenchContext } from './context.js';
import type { Metric, SectionResult, TargetCheck } from './results.js';
import { benchMotoPid, freshAwsResources } from './support/awsBed.js';
import { childModule, startChild } from './support/child.js';
import { sourceAssetOf } from './support/library.js';
import { RssSampler } from './support/rssSampler.js';
import { makeScratch, removeScratch } from './support/scratch.js';
import { mib, num, seconds, type Table } from './table.js';
import { memoryCases, type MemoryCase } from './workloads.js';

export interface MemoryRun {
  case: string;
  label: string;
  store: 's3-moto' | 'local-folder';
  bytes: number;
  /** RSS once warm (one small asset copied), before the measured copy. */
  rssBefore: number;
  /** Highest RSS sampled every 50 ms during the copy. */
  peakRss: number;
  /** The kernel's high-water mark for the whole child (warm-up included). */
  vmHwm: number;
  samples: number;
  /** Highest RSS of moto_server during the copy (it holds the objects in memory), bytes. */
  motoPeakRss?: number;
  transfer?: TransferDone;
  /** Why the S3 run failed, when it did (then the local-folder run stands in). */
  error?: string;
}

async function measure(
  context: BenchContext,
  memoryCase: MemoryCase,
  store: MemoryRun['store'],
): Promise<MemoryRun> {
  const library = generateLibrary({
    seed: `bench-memory-${memoryCase.name}`,
    counts: { image: { upload: 1 } },
    sizes: { image: [1_000_000, 1_000_000] },
    large: memoryCase.assets.map((bytes, i) => ({
      resourceType: 'video',
      bytes,
      publicId: `large/asset-${i}`,
    })),
  });
  const double = await startCloudinaryDouble({ library, rateLimitPerHour: 1_000_000 });
  const scratch = await makeScratch('memory');
  const bytes = memoryCase.assets.reduce((a, b) => a + b, 0);
  const run: MemoryRun = {
    case: memoryCase.name,
    label: memoryCase.label,
    store,
    bytes,
    rssBefore: 0,
    peakRss: 0,
    vmHwm: 0,
    samples: 0,
  };
  try {
    const assets = await Promise.all(library.all().map((asset) => sourceAssetOf(library, asset)));
    const warmup = assets.find((a) => a.resourceType === 'image');
    if (!warmup) throw new Error('the warm-up asset is missing');
    const aws = store === 's3-moto' ? await freshAwsResources() : undefined;
    const job: ReplicateJob = {
      cloudinaryUrl: double.cloudinaryUrl,
      awsEndpoint: aws?.endpoint,
      bucket: aws?.bucket ?? '',
      table: aws?.table ?? '',
      dest: scratch,
      warmup,
      assets: assets.filter((a) => a !== warmup),
    };
    const child = startChild<ChildMessage>(
      childModule('replicateWorker.ts'),
      process.env,
      profileFlags(context, `replicate-${memoryCase.name}`),
    );
    child.send(job);
    await child.next('ready');
    run.rssBefore = procStatusBytes(child.pid, 'VmRSS');
    const sampler = new RssSampler(child.pid).start();
    const motoPid = aws ? benchMotoPid() : undefined;
    const motoSampler = motoPid ? new RssSampler(motoPid, 200).start() : undefined;
    child.send({ kind: 'go' });
    try {
      run.transfer = await child.next('done');
    } finally {
      const sampled = sampler.stop();
      run.peakRss = sampled.peak;
      run.samples = sampled.samples;
      run.motoPeakRss = motoSampler?.stop().peak;
    }
    run.vmHwm = run.transfer.peakRss;
    await child.exited;
    return run;
  } finally {
    await removeScratch(scratch);
    await double.close();
  }
}

async function measureCase(context: BenchContext, memoryCase: MemoryCase): Promise<MemoryRun[]> {
  context.log(`memory: ${memoryCase.label} into S3 on moto`);
  try {
    return [await measure(context, memoryCase, 's3-moto')];
  } catch (error) {
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
    context.log(`  S3 on moto failed (${message}); measuring with a local folder instead`);
    const local = await measure(context, memoryCase, 'local-folder');
    return [
      {
        ...local,
        store: 's3-moto',
        rssBefore: 0,
        peakRss: 0,
        vmHwm: 0,
        samples: 0,
        transfer: undefined,
        error: message,
      },
      local,
    ];
  }
}

export async function memorySection(context: BenchContext): Promise<SectionResult> {
  const cases = memoryCases(context.mode);
  const runs: MemoryRun[] = [];
  for (const memoryCase of cases) runs.push(...(await measureCase(context, memoryCase)));
  const metrics: Metric[] = [];
  const targets: TargetCheck[] = [];
  for (const memoryCase of cases) {
    const run = runs.find((r) => r.case === memoryCase.name && r.transfer !== undefined);
    if (!run) continue;
    const growth = run.peakRss - run.rssBefore;
    metrics.push(
      {
        key: `memory.${run.case}.peak`,
        label: `Worker peak RSS, ${run.label}`,
        value: run.peakRss / 2 ** 20,
        unit: 'MiB',
        better: 'lower',
      },
      {
        key: `memory.${run.case}.growth`,
        label: `Worker RSS growth, ${run.label}`,
        value: growth / 2 ** 20,
        unit: 'MiB',
        better: 'lower',
      },
    );
    const where = run.store === 's3-moto' ? 'into S3' : 'into a local folder (moto failed)';
    if (memoryCase.peakTarget !== undefined) {
      targets.push({
        target: `Worker peak RSS ≤ ${mib(memoryCase.peakTarget)} for ${run.label}`,
        measured: `${mib(run.peakRss)} ${where}`,
        met: run.peakRss <= memoryCase.peakTarget,
      });
    }
    if (memoryCase.growthTarget !== undefined) {
      targets.push({
        target: `Worker RSS grows < ${mib(memoryCase.growthTarget)} for ${run.label} (issue 3)`,
        measured: `+${mib(growth)} ${where}`,
        met: growth < memoryCase.growthTarget,
      });
    }
  }
  if (!cases.some((c) => c.peakTarget !== undefined)) {
    targets.push({
      target: 'Worker peak RSS ≤ 256 MiB for a 2 GiB asset',
      measured: 'not measured in --quick (see the 1 GiB figure)',
      met: undefined,
    });
  }
  const table: Table = {
    title:
      '2. Memory — the replicate worker (replicateWork → S3ObjectStore/DynamoStateStore) in a child process, RSS sampled every 50 ms',
    head: [
      'Case',
      'Store',
      'Time',
      'MB/s',
      'RSS before',
      'Peak RSS',
      'Growth',
      'VmHWM',
      'Samples',
      'moto peak RSS',
    ],
    rows: runs.map((run) =>
      run.transfer === undefined
        ? [run.label, run.store, 'failed', '—', '—', '—', '—', '—', '—', run.error ?? '']
        : [
            run.label,
            run.store,
            seconds(run.transfer.seconds),
            num(run.bytes / 1e6 / run.transfer.seconds, 1),
            mib(run.rssBefore),
            mib(run.peakRss),
            `+${mib(run.peakRss - run.rssBefore)}`,
            mib(run.vmHwm),
            num(run.samples),
            mib(run.motoPeakRss),
          ],
    ),
    notes: [
      'Settings as deployed: 8 MiB parts, 4 parts in flight per upload, so (4 + 1) × 8 MiB of part buffers per asset.',
      'RSS before: after copying one 1 MB asset (modules, SDK clients and sockets warm). The child runs with the tsx loader.',
      "moto keeps objects in its own memory (or spooled temp files): that is moto's RSS, not the worker's.",
    ],
  };
  const backup = backupMemoryReport(await measureBackupMemory(context, context.mode));
  metrics.push(backup.metric);
  targets.push(backup.target);
  return { name: 'memory', tables: [table, backup.table], metrics, targets, data: { worker: runs, backup } };
}

import { createAwsClients } from '../../shared/aws/clients.js';
import { awsEngineFromEnv } from '../../shared/aws/engineFromEnv.js';
import { DEFAULT_SETTINGS } from '../../shared/config.js';
import { enumerate } from '../../shared/engine/enumerate.js';
import type { RunRecord } from '../../shared/types.js';
import { generateLibrary, startCloudinaryDouble } from '../double/index.js';
import { meterDynamo } from '../support/dynamoMeter.js';
import { seedCompletedFullRun, seedDynamoStates } from '../support/seedState.js';
import type { BenchContext } from './context.js';
import type { Metric, SectionResult, TargetCheck } from './results.js';
import { freshAwsResources } from './support/awsBed.js';
import { num, type Table } from './table.js';

const DAY_MS = 86_400_000;
/** Share of the library uploaded or changed between two daily runs (as the cost section assumes). */
export const DAILY_CHANGE_SHARE = 0.01;
/** A full listing (reconciliation) every this many days, the default (RECONCILE_EVERY_DAYS). */
export const RECONCILE_EVERY_DAYS = DEFAULT_SETTINGS.reconcileEveryDays;

/** What one daily run of the enumerator costs: Admin API calls and DynamoDB units and items. */
export interface RunCost {
  adminCalls: number;
  /**
   * DynamoDB read request units as AWS bills them (item sizes, half for eventually consistent
   * reads); moto's own figure (a whole unit per item either way) is `motoReadUnits`.
   */
  readUnits: number;
  motoReadUnits: number;
  /** DynamoDB write request units, as moto reports them (ReturnConsumedCapacity). */
  writeUnits: number;
  itemsRead: number;
  stateItemsRead: number;
  itemsWritten: number;
  listed: number;
  enqueued: number;
  seconds: number;
}

/**
 * The measured figures per daily run, one entry per library size: the input the cost model takes
 * (test/bench/cost.ts). A month has (RECONCILE_EVERY_DAYS − 1) incremental runs for each
 * reconciliation; `perDay` averages them.
 */
export interface DailyRunCostInput {
  reconcileEveryDays: number;
  dailyChangeShare: number;
  libraries: Array<{
    assets: number;
    /** A daily run with nothing changed since the last run. */
    unchanged: RunCost;
    /** A daily run with DAILY_CHANGE_SHARE of the library changed since the last run. */
    incremental: RunCost;
    /** The weekly full listing of an unchanged library (deletions, anything missed). */
    reconciliation: RunCost;
  }>;
}

/** Average cost of one day: the incremental runs and the reconciliation, weighted by the schedule. */
export function perDay(
  library: DailyRunCostInput['libraries'][number],
  reconcileEveryDays: number,
): Pick<RunCost, 'adminCalls' | 'readUnits' | 'writeUnits'> {
  const n = Math.max(1, reconcileEveryDays);
  const mix = (key: 'adminCalls' | 'readUnits' | 'writeUnits') =>
    (library.incremental[key] * (n - 1) + library.reconciliation[key]) / n;
  return { adminCalls: mix('adminCalls'), readUnits: mix('readUnits'), writeUnits: mix('writeUnits') };
}

/** Library sizes measured: the README's two (quick mode: the small one only). */
export function dailyRunSizes(context: BenchContext): number[] {
  return context.mode === 'quick' ? [3_000] : [3_000, 250_000];
}

/**
 * Measures one reconciliation and one incremental daily run of the enumerator (listing, diff,
 * enqueue, manifest, deletions) on the double and moto for a library of `assets` already backed
 * up (states written straight into the table). Copies are per changed asset and measured by the
 * pipeline sections.
 */
async function measureLibrary(
  context: BenchContext,
  assets: number,
): Promise<DailyRunCostInput['libraries'][number]> {
  const aws = await freshAwsResources();
  const library = generateLibrary({
    seed: `daily-${assets}`,
    counts: { image: { upload: assets } },
    sizes: { image: [500, 2_000] },
  });
  const start = new Date('2026-03-08T10:00:00Z');
  let now = start;
  const double = await startCloudinaryDouble({ library, now: () => now, rateLimitPerHour: 100_000 });
  Object.assign(process.env, {
    CLOUDINARY_URL: double.cloudinaryUrl,
    BUCKET_NAME: aws.bucket,
    TABLE_NAME: aws.table,
    QUEUE_URL: aws.queueUrl,
    DLQ_URL: aws.dlqUrl,
    RECONCILE_EVERY_DAYS: String(RECONCILE_EVERY_DAYS),
    RESOURCE_TYPES: DEFAULT_SETTINGS.resourceTypes.join(','),
    DELIVERY_TYPES: DEFAULT_SETTINGS.deliveryTypes.join(','),
  });
  const clients = createAwsClients();
  try {
    const engine = await awsEngineFromEnv(process.env, clients);
    // The last full listing a week ago: today's run is the reconciliation.
    const lastFull = new Date(start.getTime() - RECONCILE_EVERY_DAYS * DAY_MS);
    const seeded = await seedCompletedFullRun(engine.state, engine.settings, lastFull, assets);
    context.log(`daily run ${num(assets)}: writing ${num(assets)} states into moto`);
    await seedDynamoStates(
      clients.dynamo,
      aws.table,
      library.all(),
      (asset) => library.md5Of(asset),
      seeded.runId,
      lastFull.toISOString(),
    );
    const meter = meterDynamo(clients.dynamo);
    const measure = async (): Promise<RunCost> => {
      meter.reset();
      double.counters.reset();
      const began = performance.now();
      const outcome = await enumerate({ ...engine, now: () => now });
      if (outcome.status !== 'completed')
        throw new Error(`the daily run ${outcome.status}: ${outcome.reason}`);
      const usage = meter.usage();
      const run: RunRecord = outcome.run;
      return {
        adminCalls: double.counters.adminCalls,
        readUnits: usage.billedReadUnits,
        motoReadUnits: usage.readUnits,
        writeUnits: usage.writeUnits,
        itemsRead: usage.itemsRead,
        stateItemsRead: usage.stateItemsRead,
        itemsWritten: usage.itemsWritten,
        listed: run.counters.listed,
        enqueued: run.counters.enqueued,
        seconds: (performance.now() - began) / 1000,
      };
    };
    context.log(`daily run ${num(assets)}: reconciliation`);
    const reconciliation = await measure();
    now = new Date(start.getTime() + DAY_MS);
    context.log(`daily run ${num(assets)}: nothing changed`);
    const unchanged = await measure();
    // A day of changes: 1% overwritten an hour after that run started.
    now = new Date(start.getTime() + DAY_MS + 3_600_000);
    const changed = library.all().slice(0, Math.round(assets * DAILY_CHANGE_SHARE));
    for (const asset of changed) library.overwrite(asset.resource_type, asset.type, asset.public_id);
    now = new Date(start.getTime() + 2 * DAY_MS);
    context.log(`daily run ${num(assets)}: ${num(changed.length)} changed`);
    const incremental = await measure();
    return { assets, unchanged, incremental, reconciliation };
  } finally {
    for (const client of Object.values(clients)) client.destroy();
    await double.close();
  }
}

/** The per-daily-run figures, measured once per bench run (the cost section may take them too). */
export function dailyRunCosts(context: BenchContext): Promise<DailyRunCostInput> {
  return context.shared('dailyRunCosts', async () => {
    const libraries = [];
    for (const assets of dailyRunSizes(context)) libraries.push(await measureLibrary(context, assets));
    return { reconcileEveryDays: RECONCILE_EVERY_DAYS, dailyChangeShare: DAILY_CHANGE_SHARE, libraries };
  });
}

export async function dailyRunSection(context: BenchContext): Promise<SectionResult> {
  const input = await dailyRunCosts(context);
  const rows: string[][] = [];
  const metrics: Metric[] = [];
  const targets: TargetCheck[] = [];
  for (const library of input.libraries) {
    for (const kind of ['unchanged', 'incremental', 'reconciliation'] as const) {
      const cost = library[kind];
      rows.push([
        num(library.assets),
        kind,
        num(cost.listed),
        num(cost.adminCalls),
        num(cost.readUnits),
        num(cost.writeUnits),
        num(cost.stateItemsRead),
        cost.seconds.toFixed(1),
      ]);
      for (const key of ['adminCalls', 'readUnits', 'writeUnits'] as const) {
        metrics.push({
          key: `dailyRun.${library.assets}.${kind}.${key}`,
          label: `${kind} daily run, ${num(library.assets)} assets: ${key}`,
          value: cost[key],
          unit: key === 'adminCalls' ? 'calls' : 'units',
          better: 'lower',
        });
      }
    }
    const day = perDay(library, input.reconcileEveryDays);
    rows.push([
      num(library.assets),
      `per day (1 in ${input.reconcileEveryDays} full)`,
      '',
      day.adminCalls.toFixed(1),
      day.readUnits.toFixed(1),
      day.writeUnits.toFixed(1),
      '',
      '',
    ]);
  }
  const large = input.libraries.find((l) => l.assets === 250_000);
  targets.push({
    target: 'A daily run over 250,000 unchanged assets: at most 3 Admin calls and 100 state items read',
    measured: large
      ? `${large.unchanged.adminCalls} Admin calls, ${num(large.unchanged.stateItemsRead)} state items read`
      : 'not measured in quick mode',
    met: large ? large.unchanged.adminCalls <= 3 && large.unchanged.stateItemsRead <= 100 : undefined,
  });
  const table: Table = {
    title: `Daily runs (enumerator): ${Math.round(input.dailyChangeShare * 100)}% changed per day, a full listing every ${input.reconcileEveryDays} days`,
    head: [
      'Assets',
      'Run',
      'Listed',
      'Admin calls',
      'Read units',
      'Write units',
      'State items read',
      'Seconds',
    ],
    rows,
  };
  return { name: 'dailyRun', tables: [table], metrics, targets, data: input };
}

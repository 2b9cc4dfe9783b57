import { readConfig } from '../../infra/config.js';
import { SETTLE_CHECK_MS } from '../../functions/enumerate.js';
import type { BenchContext } from './context.js';
import {
  ALWAYS_ON_IDLE_RECEIVES_PER_DAY,
  costMarkdown,
  costReport,
  describeInputs,
  idleReceives,
  PRICE_LIST,
  PRICES,
  type CostInputs,
  type DailyRunFigures,
  type LibraryInput,
} from './costModel.js';
import { stackInputs } from './costStack.js';
import { dailyRunCosts, type DailyRunCostInput } from './dailyRun.js';
import { perAsset } from './economy.js';
import { pipelineRun, type CycleMeasurement, type PipelineRun } from './pipelineRun.js';
import type { Metric, SectionResult } from './results.js';
import { requestsOf } from './support/requestMeter.js';
import { num, usd, type Table } from './table.js';

const S3_PUT_CLASS = [
  'PutObject',
  'CreateMultipartUpload',
  'UploadPart',
  'CompleteMultipartUpload',
  'PutObjectTagging',
  'ListObjectsV2',
  'CopyObject',
];
const S3_GET_CLASS = ['GetObject', 'HeadObject', 'GetObjectTagging', 'HeadBucket'];

/** Requests and Lambda time of one unit of work: a listing page, a listed asset or a copied asset. */
interface Rates {
  s3Put: number;
  s3Get: number;
  sqs: number;
  readUnits: number;
  writeUnits: number;
  lambdaSeconds: number;
  invocations: number;
}

const NONE: Rates = {
  s3Put: 0,
  s3Get: 0,
  sqs: 0,
  readUnits: 0,
  writeUnits: 0,
  lambdaSeconds: 0,
  invocations: 0,
};

function requestsPer(
  cycle: CycleMeasurement,
  units: number,
): Pick<Rates, 's3Put' | 's3Get' | 'sqs' | 'writeUnits'> {
  return {
    s3Put: requestsOf(cycle.aws, 'S3', S3_PUT_CLASS) / units,
    s3Get: requestsOf(cycle.aws, 'S3', S3_GET_CLASS) / units,
    sqs: perAsset(cycle, units, 'SQS'),
    writeUnits: cycle.aws.writeUnits / units,
  };
}

/**
 * The measured rates: a run with nothing changed costs per listing page (manifest parts, run
 * checkpoints) and per listed asset (state reads, listing time); a copy costs what a full run adds.
 */
export function measuredRates(run: PipelineRun): {
  page: Rates;
  listed: Rates;
  copied: Rates;
  meanBytes: number;
} {
  const pages = Math.max(1, run.noChange.adminCalls);
  const page = { ...NONE, ...requestsPer(run.noChange, pages) };
  const listed = {
    ...NONE,
    readUnits: run.noChange.aws.readUnits / run.assets,
    lambdaSeconds: run.noChange.enumerateSeconds / run.assets,
  };
  const full = requestsPer(run.full, 1);
  const replicated = Math.max(1, run.full.replicated);
  const extra = (name: keyof typeof full) => Math.max(0, full[name] - page[name] * pages) / replicated;
  return {
    page,
    listed,
    copied: {
      s3Put: extra('s3Put'),
      s3Get: extra('s3Get'),
      sqs: extra('sqs'),
      writeUnits: extra('writeUnits'),
      readUnits: Math.max(0, run.full.aws.readUnits - run.noChange.aws.readUnits) / replicated,
      lambdaSeconds: run.full.aws.batches.seconds / replicated,
      invocations: run.full.aws.batches.count / replicated,
    },
    meanBytes: run.bytes / run.assets,
  };
}

/** The libraries of the cost table: 20 changes a day in the small one, the same share (0.67%) in the large one. */
export const LIBRARIES = [
  { name: '3,000 assets / 10 GB', assets: 3_000, gb: 10, changesPerDay: 20 },
  {
    name: '250,000 assets / 1 TB',
    assets: 250_000,
    gb: 1_000,
    changesPerDay: Math.round((250_000 * 20) / 3_000),
  },
] as const;
/** Admin API calls an hour on the free plan, less the default 2% reserve: a longer listing pauses. */
const ADMIN_CALLS_PER_HOUR = 490;
/** Wall time of one Admin API call against Cloudinary (not loopback): how long a listing keeps the workers on. */
const ADMIN_CALL_SECONDS = 1;
/** Bytes of log a Lambda invocation writes beyond our lines: START/END/REPORT and the EMF metrics blob. */
const LOG_BYTES_PER_INVOCATION = 1_500;
/** One INFO line per listed page and per copied asset. */
const LOG_BYTES_PER_LINE = 300;
/** A settle check: one short enumerate invocation. */
const SETTLE_CHECK_SECONDS = 0.3;

/** The enumerator's average day as the daily-run section measured it (test/bench/dailyRun.ts). */
export interface DailyListing {
  adminCalls: number;
  readUnits: number;
  writeUnits: number;
  listed: number;
}

/**
 * The enumerator's average day for `library` from the daily-run section's figures: the measured
 * library of that size, else the largest measured one scaled (a full listing by its pages and
 * assets, a change listing by its changes). The change share is the library's own.
 */
export function averageDay(
  measured: DailyRunCostInput,
  library: Pick<LibraryInput, 'assets' | 'changesPerDay'>,
): DailyListing | undefined {
  const base =
    measured.libraries.find((l) => l.assets === library.assets) ??
    [...measured.libraries].sort((a, b) => b.assets - a.assets)[0];
  if (!base) return undefined;
  const full = library.assets / base.assets;
  const changed = library.changesPerDay / Math.max(1, base.assets * measured.dailyChangeShare);
  const fullPages = (assets: number) => Math.ceil(assets / 500);
  const emptyListings = Math.max(0, base.reconciliation.adminCalls - fullPages(base.assets));
  const incrementalListed = base.incremental.listed * changed;
  const incremental = {
    adminCalls: Math.max(base.incremental.adminCalls, fullPages(incrementalListed)),
    readUnits: base.incremental.readUnits * changed,
    writeUnits: base.incremental.writeUnits * changed,
    listed: incrementalListed,
  };
  const reconciliation = {
    adminCalls: fullPages(library.assets) + emptyListings,
    readUnits: base.reconciliation.readUnits * full,
    writeUnits: base.reconciliation.writeUnits * full,
    listed: base.reconciliation.listed * full,
  };
  const n = Math.max(1, measured.reconcileEveryDays);
  const mix = (key: keyof DailyListing) => (incremental[key] * (n - 1) + reconciliation[key]) / n;
  return {
    adminCalls: mix('adminCalls'),
    readUnits: mix('readUnits'),
    writeUnits: mix('writeUnits'),
    listed: mix('listed'),
  };
}

/** What one daily run of `library` does, scaled from the rates this bench measured. */
export function dailyFigures(
  rates: ReturnType<typeof measuredRates>,
  library: Pick<LibraryInput, 'assets' | 'gb' | 'changesPerDay'>,
  memory: { enumeratorGb: number; workerGb: number; workerMaxConcurrency: number },
  listing?: DailyListing,
): DailyRunFigures {
  const changes = library.changesPerDay;
  // The assets in one listing, the other 8 listings empty; spreading them adds at most a page per listing.
  // With the daily-run section's figures: what the enumerator does on an average day (change
  // listings, one full listing every reconcileEveryDays days).
  const pages = listing ? Math.max(1, listing.adminCalls) : Math.ceil(library.assets / 500) + 8;
  const listedPerDay = listing ? listing.listed : library.assets;
  const sizeScale = (library.gb * 1e9) / library.assets / rates.meanBytes;
  const copySeconds = rates.copied.lambdaSeconds * sizeScale * changes;
  const enumerateHours = Math.ceil(pages / ADMIN_CALLS_PER_HOUR);
  const replicateHours =
    changes > 0 ? Math.max(1, Math.ceil(copySeconds / memory.workerMaxConcurrency / 3600)) : 0;
  // Checked when the listing ends, then every SETTLE_CHECK_MS while copies go on.
  const settleChecks =
    changes > 0 ? 1 + Math.ceil(copySeconds / memory.workerMaxConcurrency / (SETTLE_CHECK_MS / 1000)) : 0;
  const listingSeconds =
    (enumerateHours - 1) * 3600 + Math.min(pages, ADMIN_CALLS_PER_HOUR) * ADMIN_CALL_SECONDS;
  const enumerateInvocations = enumerateHours + settleChecks;
  const lambdaInvocations = enumerateInvocations + rates.copied.invocations * changes;
  const daily = (name: keyof Rates) =>
    rates.page[name] * pages + rates.listed[name] * listedPerDay + rates.copied[name] * changes;
  const enumeratorUnits = (name: 'readUnits' | 'writeUnits') =>
    listing ? listing[name] + rates.copied[name] * changes : daily(name);
  return {
    adminCalls: listing ? listing.adminCalls : pages,
    dynamoReadUnits: enumeratorUnits('readUnits') + settleChecks * 0.5,
    dynamoWriteUnits: enumeratorUnits('writeUnits'),
    // Each settle check reads the queue's counts, twice when it switches the workers off.
    sqsRequests: daily('sqs') + settleChecks + (changes > 0 ? 1 : 0),
    s3PutClass: daily('s3Put'),
    s3GetClass: daily('s3Get'),
    lambdaInvocations,
    lambdaGbSeconds:
      rates.listed.lambdaSeconds * listedPerDay * memory.enumeratorGb +
      settleChecks * SETTLE_CHECK_SECONDS * memory.enumeratorGb +
      copySeconds * memory.workerGb,
    logBytes: lambdaInvocations * LOG_BYTES_PER_INVOCATION + (pages + changes) * LOG_BYTES_PER_LINE,
    // The settle check that counts the finished run sends from the enumerate function too.
    metricHours: { enumerate: Math.max(enumerateHours, replicateHours), replicate: replicateHours },
    schedulerInvocations: enumerateInvocations,
    // On from the run's start until its listing ends, then until the settle check after the last copy.
    idlePollSeconds: listingSeconds + (changes > 0 ? SETTLE_CHECK_MS / 1000 : 0),
    objectsTransitioned: changes,
    credentialReads: lambdaInvocations,
  };
}

export async function costSection(context: BenchContext): Promise<SectionResult> {
  const run = await pipelineRun(context);
  const config = readConfig({ context: {}, env: {} });
  const memory = {
    enumeratorGb: config.enumeratorMemoryMb / 1024,
    workerGb: config.workerMemoryMb / 1024,
    workerMaxConcurrency: config.workerMaxConcurrency,
  };
  const rates = measuredRates(run);
  const measured = await dailyRunCosts(context);
  const inputs: CostInputs = {
    libraries: LIBRARIES.map((l) => ({
      ...l,
      daily: dailyFigures(rates, l, memory, averageDay(measured, l)),
    })),
    stack: stackInputs(),
  };
  const report = costReport(inputs);
  const markdown = costMarkdown(report);

  const metrics: Metric[] = LIBRARIES.map((l, i) => ({
    key: `cost.monthly.${l.assets}`,
    label: `Monthly AWS cost excluding storage, ${l.name}`,
    value: report.totals[i] ?? 0,
    unit: '$',
    better: 'lower',
  }));
  const perLine = (rate: Rates, name: keyof Rates, decimals: number) => num(rate[name], decimals);
  const tables: Table[] = [
    {
      title: `5. Cost model — inputs measured by this run (pipeline on moto, ${run.assets} assets, mean ${num(rates.meanBytes / 1e6, 2)} MB)`,
      head: ['Measured', 'Per listing page', 'Per listed asset', 'Per copied asset'],
      rows: [
        [
          'S3 PUT/LIST-class requests',
          perLine(rates.page, 's3Put', 2),
          '—',
          perLine(rates.copied, 's3Put', 3),
        ],
        [
          'S3 GET/HEAD-class requests',
          perLine(rates.page, 's3Get', 2),
          '—',
          perLine(rates.copied, 's3Get', 3),
        ],
        ['SQS requests', perLine(rates.page, 'sqs', 2), '—', perLine(rates.copied, 'sqs', 3)],
        [
          'DynamoDB read units',
          '—',
          perLine(rates.listed, 'readUnits', 3),
          perLine(rates.copied, 'readUnits', 3),
        ],
        [
          'DynamoDB write units',
          perLine(rates.page, 'writeUnits', 2),
          '—',
          perLine(rates.copied, 'writeUnits', 3),
        ],
        [
          'Lambda seconds',
          '—',
          perLine(rates.listed, 'lambdaSeconds', 4),
          perLine(rates.copied, 'lambdaSeconds', 3),
        ],
        ['Replicate invocations', '—', '—', perLine(rates.copied, 'invocations', 3)],
      ],
      notes: [
        'Per page and per listed asset: the no-change cycle (per page: its Admin calls); per copied asset: what the full cycle added.',
        `Lambda seconds per copied asset are scaled by the libraries' mean asset size; measured against moto, so they are high.`,
        ...describeInputs(inputs),
      ],
    },
    {
      title: `5b. Cost model — monthly AWS cost with daily runs (${PRICE_LIST.region} list prices of ${PRICE_LIST.date})`,
      head: ['Item', ...LIBRARIES.map((l) => l.name)],
      rows: [
        ...report.lines.map((line) => [line.item, ...line.values.map(usd)]),
        ['Total excluding storage', ...report.totals.map(usd)],
        ['  the dashboard billed (a fourth)', ...report.totalsWithDashboard.map(usd)],
        ['  with the always-free tiers', ...report.totalsFreeTier.map(usd)],
        ['Storage, apart:', ...LIBRARIES.map(() => '')],
        ...report.storage.map((line) => [line.item, ...line.values.map(usd)]),
      ],
      notes: [
        `Idle polling: ${num(ALWAYS_ON_IDLE_RECEIVES_PER_DAY)} empty ReceiveMessage a day with the event source always on (5 pollers × 86,400 s ÷ 20 s);`,
        `  switched on only from a run's start to the settle check after its last copy: ${inputs.libraries.map((l) => num(idleReceives(l.daily.idlePollSeconds))).join(' and ')} a day.`,
        `Alarms ${inputs.stack.alarmMetrics} metrics (template), custom metrics ${inputs.stack.customMetrics.enumerate} + ${inputs.stack.customMetrics.replicate} (handlers' EMF), $${PRICES.customMetricMonth}/metric-month prorated by the hour sent.`,
        'The README table is this one for the figures recorded in test/bench/costFigures.ts (test/cost-readme.test.ts checks it).',
      ],
    },
  ];
  return {
    name: 'cost',
    tables,
    metrics,
    targets: [
      {
        target:
          'A small library (3,000 assets, 20 changes a day) at or under $0.50 a month excluding storage',
        measured: `${usd(report.totals[0] ?? 0)} at list prices (${usd(report.totalsWithDashboard[0] ?? 0)} with the optional dashboard billed as an account's fourth); ${usd(report.totalsFreeTier[0] ?? 0)} with the always-free tiers`,
        met: (report.totals[0] ?? Infinity) <= 0.5,
      },
    ],
    data: { prices: PRICES, priceList: PRICE_LIST, rates, inputs, report, markdown },
  };
}

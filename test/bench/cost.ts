import { readConfig } from '../../infra/config.js';
import type { BenchContext } from './context.js';
import { perAsset } from './economy.js';
import { pipelineRun, type CycleMeasurement, type PipelineRun } from './pipelineRun.js';
import type { Metric, SectionResult } from './results.js';
import { requestsOf } from './support/requestMeter.js';
import { num, usd, type Table } from './table.js';

/** Published us-east-1 list prices, before free tiers. */
export const PRICES = {
  lambdaGbSecond: 0.0000133334,
  lambdaPerMillionRequests: 0.2,
  sqsPerMillionRequests: 0.4,
  dynamoPerMillionWriteUnits: 0.625,
  dynamoPerMillionReadUnits: 0.125,
  dynamoStorageGbMonth: 0.25,
  s3PutPerThousand: 0.005,
  s3GetPerThousand: 0.0004,
  standardGbMonth: 0.023,
  glacierIrGbMonth: 0.004,
  glacierIrTransitionPerThousand: 0.02,
  secretMonth: 0.4,
} as const;

export const LIBRARIES = [
  { name: '3,000 assets / 10 GB', assets: 3_000, gb: 10 },
  { name: '250,000 assets / 1 TB', assets: 250_000, gb: 1_000 },
] as const;
/** Share of the library new or changed each day. */
export const DAILY_CHANGE = 0.01;
const DAYS = 30;
/** Lambda's SQS event source: 5 pollers long-polling (20 s) an idle queue, about 3 requests a minute each. */
const IDLE_POLL_REQUESTS_PER_MONTH = 5 * 3 * 60 * 24 * DAYS;

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

interface CostLine {
  item: string;
  values: number[];
}

export async function costSection(context: BenchContext): Promise<SectionResult> {
  const run = await pipelineRun(context);
  const config = readConfig({ context: {}, env: {} });
  const workerGb = config.workerMemoryMb / 1024;
  const enumeratorGb = config.enumeratorMemoryMb / 1024;
  const rates = measuredRates(run);
  const lines: CostLine[] = [];
  const add = (item: string, value: (library: (typeof LIBRARIES)[number]) => number) =>
    lines.push({ item, values: LIBRARIES.map(value) });

  type Library = (typeof LIBRARIES)[number];
  const changed = (l: Library) => l.assets * DAILY_CHANGE;
  // The assets in one listing, the other 8 listings empty; spreading them adds at most a page per listing.
  const pages = (l: Library) => Math.ceil(l.assets / 500) + 8;
  // Lambda time measured per copied asset grows with its size: scale by the libraries' mean asset size.
  const sizeScale = (l: Library) => (l.gb * 1e9) / l.assets / rates.meanBytes;
  const daily = (name: keyof Rates, l: Library) =>
    rates.page[name] * pages(l) + rates.listed[name] * l.assets + rates.copied[name] * changed(l);
  const monthly = (name: keyof Rates, l: Library) => DAYS * daily(name, l);
  const lambdaGbSeconds = (l: Library, copies: number) =>
    rates.listed.lambdaSeconds * l.assets * enumeratorGb +
    rates.copied.lambdaSeconds * sizeScale(l) * copies * workerGb;

  add(
    'Lambda compute (enumerate + replicate GB-s)',
    (l) => DAYS * lambdaGbSeconds(l, changed(l)) * PRICES.lambdaGbSecond,
  );
  add(
    'Lambda requests',
    (l) => ((DAYS * (1 + rates.copied.invocations * changed(l))) / 1e6) * PRICES.lambdaPerMillionRequests,
  );
  add(
    'SQS requests (send, receive, delete)',
    (l) => (monthly('sqs', l) / 1e6) * PRICES.sqsPerMillionRequests,
  );
  add(
    'SQS idle polling by the event source (estimate)',
    () => (IDLE_POLL_REQUESTS_PER_MONTH / 1e6) * PRICES.sqsPerMillionRequests,
  );
  add('DynamoDB reads', (l) => (monthly('readUnits', l) / 1e6) * PRICES.dynamoPerMillionReadUnits);
  add('DynamoDB writes', (l) => (monthly('writeUnits', l) / 1e6) * PRICES.dynamoPerMillionWriteUnits);
  add(
    'DynamoDB storage (≈ 1 KB per asset)',
    (l) => (l.assets * 1024 * PRICES.dynamoStorageGbMonth) / 1024 ** 3,
  );
  add('S3 PUT/LIST requests', (l) => (monthly('s3Put', l) / 1000) * PRICES.s3PutPerThousand);
  add('S3 GET/HEAD requests', (l) => (monthly('s3Get', l) / 1000) * PRICES.s3GetPerThousand);
  add(
    `S3 Standard (new versions, first ${config.archiveAfterDays} days)`,
    (l) => l.gb * DAILY_CHANGE * config.archiveAfterDays * PRICES.standardGbMonth,
  );
  add('Glacier IR storage (the library)', (l) => l.gb * PRICES.glacierIrGbMonth);
  add('Glacier IR transitions', (l) => ((DAYS * changed(l)) / 1000) * PRICES.glacierIrTransitionPerThousand);
  // The default keeps CLOUDINARY_URL in an SSM standard parameter (free); Secrets Manager is opt-in.
  add('Cloudinary credentials (SSM standard parameter)', () => 0);
  const totals = LIBRARIES.map((_, i) => lines.reduce((sum, line) => sum + (line.values[i] ?? 0), 0));
  const versionGrowth = LIBRARIES.map((l) => l.gb * DAILY_CHANGE * DAYS * PRICES.glacierIrGbMonth);
  // A first run copies everything: the same daily formula with every asset changed, plus a week in Standard.
  const backfill = LIBRARIES.map(
    (l) =>
      lambdaGbSeconds(l, l.assets) * PRICES.lambdaGbSecond +
      (rates.copied.invocations * l.assets * PRICES.lambdaPerMillionRequests) / 1e6 +
      ((rates.page.s3Put * pages(l) + rates.copied.s3Put * l.assets) / 1000) * PRICES.s3PutPerThousand +
      ((rates.page.sqs * pages(l) + rates.copied.sqs * l.assets) / 1e6) * PRICES.sqsPerMillionRequests +
      ((rates.listed.readUnits + rates.copied.readUnits) * l.assets * PRICES.dynamoPerMillionReadUnits) /
        1e6 +
      ((rates.page.writeUnits * pages(l) + rates.copied.writeUnits * l.assets) / 1e6) *
        PRICES.dynamoPerMillionWriteUnits +
      (l.assets / 1000) * PRICES.glacierIrTransitionPerThousand +
      l.gb * config.archiveAfterDays * (PRICES.standardGbMonth / DAYS),
  );

  const metrics: Metric[] = LIBRARIES.map((l, i) => ({
    key: `cost.monthly.${l.assets}`,
    label: `Monthly AWS cost, ${l.name}`,
    value: totals[i] ?? 0,
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
        `Prices (us-east-1): Lambda Arm $${PRICES.lambdaGbSecond}/GB-s + $${PRICES.lambdaPerMillionRequests}/M requests; SQS $${PRICES.sqsPerMillionRequests}/M;`,
        `  DynamoDB on-demand $${PRICES.dynamoPerMillionWriteUnits}/M WRU, $${PRICES.dynamoPerMillionReadUnits}/M RRU, storage $${PRICES.dynamoStorageGbMonth}/GB-month;`,
        `  S3 PUT $${PRICES.s3PutPerThousand}/1k, GET $${PRICES.s3GetPerThousand}/1k, Standard $${PRICES.standardGbMonth}/GB-month;`,
        `  Glacier IR $${PRICES.glacierIrGbMonth}/GB-month + $${PRICES.glacierIrTransitionPerThousand}/1k transitions; SSM standard parameters free (Secrets Manager, opt-in: $${PRICES.secretMonth}/secret-month).`,
        'Per page and per listed asset: the no-change cycle (per page: its Admin calls); per copied asset: what the full cycle added.',
        `Assumptions: a run every day (${DAYS} a month), ${num(DAILY_CHANGE * 100)}% of assets new or changed daily; replicate at ${config.workerMemoryMb} MB, enumerate at ${config.enumeratorMemoryMb} MB (the stack's defaults);`,
        `  objects move to Glacier IR after ${config.archiveAfterDays} days. Lambda seconds per copied asset are scaled by mean asset size; they are measured against moto, so they are high.`,
        '  Not modelled: free tiers, CloudWatch alarms and logs, data transfer (Cloudinary bandwidth is billed by Cloudinary).',
      ],
    },
    {
      title: '5b. Cost model — estimated monthly AWS cost with daily runs',
      head: ['Item', ...LIBRARIES.map((l) => l.name)],
      rows: [
        ...lines.map((line) => [line.item, ...line.values.map(usd)]),
        ['Monthly total', ...totals.map(usd)],
        ['  + old versions kept, each month adds', ...versionGrowth.map(usd)],
        ['One-time backfill (every asset copied once)', ...backfill.map(usd)],
      ],
      notes: [
        `The ${num(DAILY_CHANGE * 100)}% daily change: ${LIBRARIES.map((l) => `${num(changed(l))} assets / ${num(l.gb * DAILY_CHANGE, 1)} GB`).join(' and ')} a day.`,
      ],
    },
  ];
  return {
    name: 'cost',
    tables,
    metrics,
    targets: [],
    data: { prices: PRICES, rates, libraries: LIBRARIES, totals, lines },
  };
}

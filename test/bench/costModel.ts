/**
 * The monthly cost model: list prices × what a library's daily runs do. Pure: the bench feeds it
 * figures it measures, the README table is its output for the fixed figures in costFigures.ts,
 * and anyone who measures a run differently (incremental runs) feeds their own DailyRunFigures.
 */

/** Where and when the prices below were read off the AWS pricing pages. */
export const PRICE_LIST = { region: 'us-east-1', date: '2025-06-01' } as const;

/** Published us-east-1 list prices (as of PRICE_LIST.date), before free tiers. */
export const PRICES = {
  lambdaGbSecond: 0.0000133334,
  lambdaPerMillionRequests: 0.2,
  sqsPerMillionRequests: 0.4,
  dynamoPerMillionWriteUnits: 0.625,
  dynamoPerMillionReadUnits: 0.125,
  dynamoStorageGbMonth: 0.25,
  dynamoPitrGbMonth: 0.2,
  s3PutPerThousand: 0.005,
  s3GetPerThousand: 0.0004,
  standardGbMonth: 0.023,
  glacierIrGbMonth: 0.004,
  glacierIrTransitionPerThousand: 0.02,
  secretMonth: 0.4,
  secretsPerTenThousandCalls: 0.05,
  kmsPerTenThousandRequests: 0.03,
  alarmMetricMonth: 0.1,
  /** Custom metrics are prorated by the hour and metered only in hours the metric is sent. */
  customMetricMonth: 0.3,
  dashboardMonth: 3,
  logsIngestedPerGb: 0.5,
  schedulerPerMillionInvocations: 1,
} as const;

/** The always-free allowances per account and month that apply to these lines. */
export const FREE_TIER = {
  lambdaRequests: 1_000_000,
  lambdaGbSeconds: 400_000,
  sqsRequests: 1_000_000,
  alarmMetrics: 10,
  customMetrics: 10,
  dashboards: 3,
  logsGb: 5,
  schedulerInvocations: 14_000_000,
  kmsRequests: 20_000,
} as const;

export const DAYS_PER_MONTH = 30;
const HOURS_PER_MONTH = 730;

/** Lambda's SQS event source: 5 pollers long-polling an empty queue, 20 s a poll (README, "What it costs"). */
export const IDLE_POLLERS = 5;
export const LONG_POLL_SECONDS = 20;
/** Empty ReceiveMessage requests of one idle day with the mapping always on: 5 × 86,400 / 20. */
export const ALWAYS_ON_IDLE_RECEIVES_PER_DAY = (IDLE_POLLERS * 86_400) / LONG_POLL_SECONDS;

/** What one daily run of a library does: measured by the bench, or fed by another measurement. */
export interface DailyRunFigures {
  adminCalls: number;
  dynamoReadUnits: number;
  dynamoWriteUnits: number;
  /** SQS requests of the work: sends, receives that got messages, deletes, visibility changes, settle checks. */
  sqsRequests: number;
  /** S3 PUT, COPY, POST and LIST class requests. */
  s3PutClass: number;
  /** S3 GET and HEAD class requests. */
  s3GetClass: number;
  lambdaInvocations: number;
  lambdaGbSeconds: number;
  /** Bytes written to CloudWatch Logs (our lines, Lambda's START/END/REPORT, EMF metric blobs). */
  logBytes: number;
  /** Hours in which each function sends its custom metrics (billing is per metric-hour). */
  metricHours: { enumerate: number; replicate: number };
  /** The daily schedule, continuations and settle checks. */
  schedulerInvocations: number;
  /** Seconds the workers' event source polls an empty queue. */
  idlePollSeconds: number;
  /** Objects newly written that the lifecycle moves to Glacier IR later. */
  objectsTransitioned: number;
  /** Reads of the Cloudinary credentials (each decrypts with the aws/ssm key). */
  credentialReads: number;
}

export interface LibraryInput {
  name: string;
  assets: number;
  gb: number;
  changesPerDay: number;
  daily: DailyRunFigures;
}

/** What the deployed stack has, counted from the synthesized template and the handlers' code. */
export interface StackInputs {
  alarmMetrics: number;
  customMetrics: { enumerate: number; replicate: number };
  dashboard: boolean;
  credentials: 'ssm' | 'secrets-manager';
  /** Days new objects stay in S3 Standard before the lifecycle moves them. */
  archiveAfterDays: number;
}

export interface CostInputs {
  libraries: LibraryInput[];
  stack: StackInputs;
}

export interface CostLine {
  item: string;
  values: number[];
  /** Part of the monthly total (false: storage, reported apart; or a before/after comparison). */
  counted: boolean;
}

export interface CostReport {
  inputs: CostInputs;
  lines: CostLine[];
  storage: CostLine[];
  /** Monthly total excluding storage and the optional dashboard, at list prices. */
  totals: number[];
  /** The same with the dashboard billed (an account's fourth dashboard or later). */
  totalsWithDashboard: number[];
  /** The same with the always-free tiers, in an account that uses them for nothing else. */
  totalsFreeTier: number[];
}

const monthly = (perDay: number) => perDay * DAYS_PER_MONTH;
const above = (used: number, free: number) => Math.max(0, used - free);

/** Every monthly line for each library, from its daily figures and the stack's fixed parts. */
export function costReport(inputs: CostInputs): CostReport {
  const { libraries, stack } = inputs;
  const lines: CostLine[] = [];
  const free: number[][] = [];
  const add = (
    item: string,
    value: (l: LibraryInput) => number,
    freeValue: (l: LibraryInput) => number = value,
    counted = true,
  ) => {
    lines.push({ item, values: libraries.map(value), counted });
    if (counted) free.push(libraries.map(freeValue));
  };
  const m = (l: LibraryInput) => ({
    lambdaRequests: monthly(l.daily.lambdaInvocations),
    gbSeconds: monthly(l.daily.lambdaGbSeconds),
    sqs: monthly(l.daily.sqsRequests + idleReceives(l.daily.idlePollSeconds)),
    logsGb: monthly(l.daily.logBytes) / 1e9,
    scheduler: monthly(l.daily.schedulerInvocations),
    kms: monthly(l.daily.credentialReads),
  });
  const metricMonths = (l: LibraryInput) =>
    (stack.customMetrics.enumerate * Math.min(24, l.daily.metricHours.enumerate) * DAYS_PER_MONTH +
      stack.customMetrics.replicate * Math.min(24, l.daily.metricHours.replicate) * DAYS_PER_MONTH) /
    HOURS_PER_MONTH;

  add(
    stack.credentials === 'ssm'
      ? 'Cloudinary credentials: SSM standard parameter'
      : 'Cloudinary credentials: Secrets Manager secret',
    (l) =>
      stack.credentials === 'ssm'
        ? 0
        : PRICES.secretMonth + (m(l).kms / 10_000) * PRICES.secretsPerTenThousandCalls,
  );
  add(
    'KMS: decrypting the credentials (aws/ssm key)',
    (l) => (m(l).kms / 10_000) * PRICES.kmsPerTenThousandRequests,
    (l) => (above(m(l).kms, FREE_TIER.kmsRequests) / 10_000) * PRICES.kmsPerTenThousandRequests,
  );
  add(
    `CloudWatch alarms (${stack.alarmMetrics} alarm metrics in the template)`,
    () => stack.alarmMetrics * PRICES.alarmMetricMonth,
    () => above(stack.alarmMetrics, FREE_TIER.alarmMetrics) * PRICES.alarmMetricMonth,
  );
  add(
    `CloudWatch custom metrics (${stack.customMetrics.enumerate + stack.customMetrics.replicate} via EMF, billed per hour sent)`,
    (l) => metricMonths(l) * PRICES.customMetricMonth,
    // The free tier's ten metrics cover that many of ours: the rest is billed, prorated alike.
    (l) => {
      const total = stack.customMetrics.enumerate + stack.customMetrics.replicate;
      return total === 0
        ? 0
        : (metricMonths(l) * PRICES.customMetricMonth * above(total, FREE_TIER.customMetrics)) / total;
    },
  );
  // Optional, and free for an account's first three: shown, but apart from the totals.
  const dashboardLine: CostLine = {
    item: stack.dashboard
      ? 'CloudWatch dashboard (optional; free for an account’s first three, not in the totals)'
      : 'CloudWatch dashboard (off)',
    values: libraries.map(() => (stack.dashboard ? PRICES.dashboardMonth : 0)),
    counted: false,
  };
  lines.push(dashboardLine);
  add(
    'CloudWatch Logs ingestion',
    (l) => m(l).logsGb * PRICES.logsIngestedPerGb,
    (l) => above(m(l).logsGb, FREE_TIER.logsGb) * PRICES.logsIngestedPerGb,
  );
  add(
    'EventBridge Scheduler (daily run, continuations, settle checks)',
    (l) => (m(l).scheduler / 1e6) * PRICES.schedulerPerMillionInvocations,
    (l) =>
      (above(m(l).scheduler, FREE_TIER.schedulerInvocations) / 1e6) * PRICES.schedulerPerMillionInvocations,
  );
  add(
    'Lambda invocations',
    (l) => (m(l).lambdaRequests / 1e6) * PRICES.lambdaPerMillionRequests,
    (l) => (above(m(l).lambdaRequests, FREE_TIER.lambdaRequests) / 1e6) * PRICES.lambdaPerMillionRequests,
  );
  add(
    'Lambda compute (GB-seconds)',
    (l) => m(l).gbSeconds * PRICES.lambdaGbSecond,
    (l) => above(m(l).gbSeconds, FREE_TIER.lambdaGbSeconds) * PRICES.lambdaGbSecond,
  );
  // The SQS free tier covers the work and the polling together: it is applied once, on the total.
  add(
    'SQS requests of the work',
    (l) => (monthly(l.daily.sqsRequests) / 1e6) * PRICES.sqsPerMillionRequests,
    (l) => (above(m(l).sqs, FREE_TIER.sqsRequests) / 1e6) * PRICES.sqsPerMillionRequests,
  );
  add(
    'SQS idle polling, workers switched off between runs',
    (l) => (monthly(idleReceives(l.daily.idlePollSeconds)) / 1e6) * PRICES.sqsPerMillionRequests,
    () => 0,
  );
  lines.push({
    item: '(before: the event source always on, not counted)',
    values: libraries.map(
      () => (monthly(ALWAYS_ON_IDLE_RECEIVES_PER_DAY) / 1e6) * PRICES.sqsPerMillionRequests,
    ),
    counted: false,
  });
  add(
    'DynamoDB read units',
    (l) => (monthly(l.daily.dynamoReadUnits) / 1e6) * PRICES.dynamoPerMillionReadUnits,
  );
  add(
    'DynamoDB write units',
    (l) => (monthly(l.daily.dynamoWriteUnits) / 1e6) * PRICES.dynamoPerMillionWriteUnits,
  );
  add(
    'S3 PUT/COPY/POST/LIST requests',
    (l) => (monthly(l.daily.s3PutClass) / 1000) * PRICES.s3PutPerThousand,
  );
  add('S3 GET/HEAD requests', (l) => (monthly(l.daily.s3GetClass) / 1000) * PRICES.s3GetPerThousand);
  add(
    'S3 lifecycle transitions to Glacier IR',
    (l) => (monthly(l.daily.objectsTransitioned) / 1000) * PRICES.glacierIrTransitionPerThousand,
  );

  const storage: CostLine[] = [
    {
      item: 'Glacier IR (the library)',
      values: libraries.map((l) => l.gb * PRICES.glacierIrGbMonth),
      counted: false,
    },
    {
      item: `S3 Standard (new versions, first ${stack.archiveAfterDays} days)`,
      values: libraries.map(
        (l) => (l.changesPerDay / l.assets) * l.gb * stack.archiveAfterDays * PRICES.standardGbMonth,
      ),
      counted: false,
    },
    {
      item: 'DynamoDB and its point-in-time recovery (≈ 1 KB per asset)',
      values: libraries.map(
        (l) => ((l.assets * 1024) / 1024 ** 3) * (PRICES.dynamoStorageGbMonth + PRICES.dynamoPitrGbMonth),
      ),
      counted: false,
    },
    {
      item: 'Old versions kept: each month adds',
      values: libraries.map(
        (l) => (l.changesPerDay / l.assets) * l.gb * DAYS_PER_MONTH * PRICES.glacierIrGbMonth,
      ),
      counted: false,
    },
  ];
  const sum = (rows: number[][]) => libraries.map((_, i) => rows.reduce((s, row) => s + (row[i] ?? 0), 0));
  return {
    inputs,
    lines,
    storage,
    totals: sum(lines.filter((l) => l.counted).map((l) => l.values)),
    totalsWithDashboard: sum([...lines.filter((l) => l.counted).map((l) => l.values), dashboardLine.values]),
    totalsFreeTier: sum(free),
  };
}

/** Empty long polls in `seconds` of an enabled event source on an empty queue. */
export function idleReceives(seconds: number): number {
  return (IDLE_POLLERS * seconds) / LONG_POLL_SECONDS;
}

/** Dollars as the table shows them: cents to four places below $1, two places above. */
export function dollars(value: number): string {
  if (value === 0) return '$0';
  return value >= 1 ? `$${value.toFixed(2)}` : `$${value.toFixed(4)}`;
}

/** The report as a Markdown table: the README's cost table is exactly this. */
export function costMarkdown(report: CostReport): string {
  const { libraries } = report.inputs;
  const row = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const out = [
    row(['Monthly, us-east-1 list prices of ' + PRICE_LIST.date, ...libraries.map((l) => l.name)]),
    row(['---', ...libraries.map(() => '---:')]),
    ...report.lines.map((line) => row([line.item, ...line.values.map(dollars)])),
    row(['**Total excluding storage**', ...report.totals.map((t) => `**${dollars(t)}**`)]),
    row([
      'Total excluding storage, the dashboard billed (an account’s fourth or later)',
      ...report.totalsWithDashboard.map(dollars),
    ]),
    row([
      'Total excluding storage, with the always-free tiers (an account running nothing else)',
      ...report.totalsFreeTier.map(dollars),
    ]),
    row(['*Storage, apart:*', ...libraries.map(() => '')]),
    ...report.storage.map((line) => row([line.item, ...line.values.map(dollars)])),
    '',
    `Idle polling of the work queue, per day: ${fmt(ALWAYS_ON_IDLE_RECEIVES_PER_DAY)} empty ReceiveMessage ` +
      `with the event source always on (${IDLE_POLLERS} pollers × 86,400 s ÷ ${LONG_POLL_SECONDS} s); ` +
      `switched on from a run's start to the settle check after its last copy: ` +
      libraries.map((l) => `${fmt(idleReceives(l.daily.idlePollSeconds))} (${l.name})`).join(', ') +
      '.',
    '',
    'Daily runs as measured:',
    '',
    ...describeInputs(report.inputs).map((line) => `- ${line}`),
  ];
  return out.join('\n');
}

/** The daily figures as the table's footnote states them, one line per library. */
export function describeInputs(inputs: CostInputs): string[] {
  return inputs.libraries.map(
    (l) =>
      `${l.name}, ${l.changesPerDay.toLocaleString('en-US')} changes a day: ` +
      `${fmt(l.daily.adminCalls)} Admin calls, ${fmt(l.daily.dynamoReadUnits)} read units, ` +
      `${fmt(l.daily.dynamoWriteUnits)} write units, ${fmt(l.daily.sqsRequests)} SQS requests, ` +
      `${fmt(l.daily.s3PutClass)} S3 PUT-class and ${fmt(l.daily.s3GetClass)} GET-class requests, ` +
      `${fmt(l.daily.lambdaInvocations)} invocations, ${fmt(l.daily.lambdaGbSeconds)} GB-s, ` +
      `${fmt(idleReceives(l.daily.idlePollSeconds))} empty polls.`,
  );
}

function fmt(value: number): string {
  return value.toLocaleString('en-US', { maximumFractionDigits: value < 10 ? 2 : 0 });
}

/**
 * Deploy-time knobs. Each is read from the environment (`REPLICATOR_<SNAKE_CASE>`), else from
 * the CDK context (`replicator:<camelCase>`, in cdk.json or `cdk deploy -c`), else its default.
 * Values are validated before any construct is built; an unknown `replicator:` context key or
 * `REPLICATOR_` variable is rejected so that a typo never silently falls back to a default.
 */

export const CONTEXT_PREFIX = 'replicator:';
export const ENV_PREFIX = 'REPLICATOR_';

export type BucketEncryptionKind = 's3' | 'kms';
export type ArchiveStorageClass = 'GLACIER_IR' | 'GLACIER' | 'DEEP_ARCHIVE';
export type ListingApi = 'resources' | 'search';
export type LogLevel = 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' | 'CRITICAL' | 'SILENT';

export interface ReplicatorConfig {
  stackName: string;
  bucketEncryption: BucketEncryptionKind;
  archiveStorageClass: ArchiveStorageClass;
  archiveAfterDays: number;
  noncurrentArchiveAfterDays: number;
  /** 0 keeps noncurrent versions forever. */
  noncurrentExpireAfterDays: number;
  abortIncompleteUploadAfterDays: number;
  /** 0 leaves Object Lock off. */
  objectLockDays: number;
  /** Undefined: only the account root user (and CloudFormation deploys) can delete history. */
  breakGlassRoleArn: string | undefined;
  maxReceives: number;
  workerTimeoutSeconds: number;
  workerMemoryMb: number;
  workerBatchSize: number;
  workerAssetConcurrency: number;
  workerMaxConcurrency: number;
  partSizeMb: number;
  uploadQueueSize: number;
  enumeratorTimeoutSeconds: number;
  enumeratorMemoryMb: number;
  /** A number of calls, or a share of the account's hourly limit such as `2%`. */
  adminReserve: string;
  listingApi: ListingApi;
  /** 0: every daily run lists the whole library. */
  reconcileEveryDays: number;
  resourceTypes: string[];
  deliveryTypes: string[];
  scheduleExpression: string;
  scheduleTimeZone: string;
  scheduleEnabled: boolean;
  /** Undefined: alarms go to the topic only. */
  alarmEmail: string | undefined;
  staleRunAlarmHours: number;
  queueAgeAlarmHours: number;
  /** The enumerator-errors, worker-throttles and queue-age alarms, faster but redundant. */
  extraAlarms: boolean;
  dashboard: boolean;
  enumeratorSingleInstance: boolean;
  webhooks: boolean;
  webhookConcurrency: number;
  webhookSignatureAlgorithm: 'sha1' | 'sha256';
  /** Undefined: CLOUDINARY_URL lives in the SSM parameter `cloudinaryParameter`. */
  cloudinarySecret: string | undefined;
  /** Undefined: `/<stackName>/CLOUDINARY_URL`. */
  cloudinaryParameter: string | undefined;
  logLevel: LogLevel;
  logRetentionDays: number;
  serviceName: string;
  metricsNamespace: string;
}

export type KnobName = keyof ReplicatorConfig;

/** A knob's reader: turns a raw context or environment value into a typed one, or throws. */
type Parser<T> = (raw: unknown) => T;

interface Knob<K extends KnobName> {
  default: ReplicatorConfig[K];
  /** What the knob does and why its default is what it is (shown in errors and the README). */
  doc: string;
  parse: Parser<ReplicatorConfig[K]>;
}

type KnobTable = { [K in KnobName]: Knob<K> };

/** Raised for any invalid knob; the message names the knob and where its value came from. */
export class ConfigError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConfigError';
  }
}

/** A value that failed a parser; `readConfig` adds which knob and source it came from. */
class InvalidValue extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidValue';
  }
}

// ---- parsers -------------------------------------------------------------------------------

function integer(min: number, max: number): Parser<number> {
  return (raw) => {
    const value = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
    if (typeof value !== 'number' || !Number.isInteger(value)) {
      throw new InvalidValue(`expected a whole number, got ${JSON.stringify(raw)}`);
    }
    if (value < min || value > max) {
      throw new InvalidValue(`expected a whole number from ${min} to ${max}, got ${value}`);
    }
    return value;
  };
}

function boolean(): Parser<boolean> {
  return (raw) => {
    if (raw === true || raw === 'true') return true;
    if (raw === false || raw === 'false') return false;
    throw new InvalidValue(`expected true or false, got ${JSON.stringify(raw)}`);
  };
}

function oneOf<T extends string>(...allowed: T[]): Parser<T> {
  return (raw) => {
    if (typeof raw === 'string' && (allowed as string[]).includes(raw)) return raw as T;
    throw new InvalidValue(`expected one of ${allowed.join(', ')}, got ${JSON.stringify(raw)}`);
  };
}

function text(pattern: RegExp, description: string): Parser<string> {
  return (raw) => {
    if (typeof raw === 'string' && pattern.test(raw)) return raw;
    throw new InvalidValue(`expected ${description}, got ${JSON.stringify(raw)}`);
  };
}

/** A number of Admin API calls (0 to 1,999) or a share of the hourly limit up to 50% (`2%`). */
function adminReserveSetting(raw: unknown): string {
  const value = typeof raw === 'number' ? String(raw) : typeof raw === 'string' ? raw.trim() : '';
  const share = /^(\d{1,2}(?:\.\d+)?)%$/u.exec(value);
  if (share && Number(share[1]) <= 50) return value;
  if (/^\d{1,4}$/u.test(value) && Number(value) <= 1999) return String(Number(value));
  throw new InvalidValue(
    `expected a number of calls from 0 to 1999 or a share of the hourly limit up to 50% (like 2%), got ${JSON.stringify(raw)}`,
  );
}

/** Optional text: an empty string means "not set", so an environment variable can clear a cdk.json value. */
function optional(parse: Parser<string>): Parser<string | undefined> {
  return (raw) => (raw === undefined || raw === null || raw === '' ? undefined : parse(raw));
}

function list(item: RegExp, description: string, allowed?: readonly string[]): Parser<string[]> {
  return (raw) => {
    const items = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',') : undefined;
    if (items === undefined) {
      throw new InvalidValue(`expected a comma-separated list or an array, got ${JSON.stringify(raw)}`);
    }
    const values = items.map((entry) => (typeof entry === 'string' ? entry.trim() : entry));
    if (values.length === 0 || values.some((v) => typeof v !== 'string' || !item.test(v))) {
      throw new InvalidValue(`expected a non-empty list of ${description}, got ${JSON.stringify(raw)}`);
    }
    const strings = values as string[];
    const unknown = allowed ? strings.filter((v) => !allowed.includes(v)) : [];
    if (unknown.length > 0) {
      throw new InvalidValue(`${unknown.join(', ')} not allowed; choose from ${allowed?.join(', ')}`);
    }
    if (new Set(strings).size !== strings.length) {
      throw new InvalidValue(`the list ${JSON.stringify(raw)} repeats an entry`);
    }
    return strings;
  };
}

const CRON = /^cron\((\S+ ){5}\S+\)$/u;
const RATE = /^rate\(([1-9]\d*) (minute|minutes|hour|hours|day|days)\)$/u;

/** EventBridge Scheduler expressions: `cron(m h dom mon dow year)` with one `?` day field, or `rate(n unit)`. */
function scheduleExpression(): Parser<string> {
  return (raw) => {
    if (typeof raw === 'string' && RATE.test(raw)) {
      const [, amount, unit] = RATE.exec(raw) ?? [];
      if ((amount === '1') !== !unit?.endsWith('s')) {
        throw new InvalidValue(`write "rate(1 day)" but "rate(2 days)": got ${JSON.stringify(raw)}`);
      }
      return raw;
    }
    if (typeof raw === 'string' && CRON.test(raw)) {
      const fields = raw.slice('cron('.length, -1).split(' ');
      if ((fields[2] === '?') === (fields[4] === '?')) {
        throw new InvalidValue(
          `exactly one of day-of-month and day-of-week must be "?", as in "cron(0 3 * * ? *)"; got ${JSON.stringify(raw)}`,
        );
      }
      return raw;
    }
    throw new InvalidValue(
      `expected "cron(minute hour day-of-month month day-of-week year)" or "rate(n unit)", got ${JSON.stringify(raw)}`,
    );
  };
}

function timeZone(): Parser<string> {
  return (raw) => {
    if (typeof raw === 'string' && raw !== '') {
      try {
        new Intl.DateTimeFormat('en-US', { timeZone: raw });
        return raw;
      } catch {
        // fall through to the error below
      }
    }
    throw new InvalidValue(
      `expected an IANA time zone such as "Europe/Paris" or "UTC", got ${JSON.stringify(raw)}`,
    );
  };
}

/** Retention periods CloudWatch Logs accepts. */
const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

function logRetention(): Parser<number> {
  const parseInteger = integer(1, 3653);
  return (raw) => {
    const value = parseInteger(raw);
    if (!LOG_RETENTION_DAYS.includes(value)) {
      throw new InvalidValue(`CloudWatch Logs accepts ${LOG_RETENTION_DAYS.join(', ')} days; got ${value}`);
    }
    return value;
  };
}

/** An existing secret's name, or its ARN (complete, with the 6-character suffix, or partial). */
const SECRET_ID = /^(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@-]+|[\w/+=.@-]{1,512})$/u;

export const RESOURCE_TYPES = ['image', 'video', 'raw'] as const;

// ---- the knobs -----------------------------------------------------------------------------

export const KNOBS: KnobTable = {
  stackName: {
    default: 'CloudinaryS3Replicator',
    doc: 'CloudFormation stack name; change it to deploy a second, independent copy in the same account.',
    parse: text(/^[A-Za-z][A-Za-z0-9-]{0,127}$/u, 'a CloudFormation stack name (letters, digits, hyphens)'),
  },
  bucketEncryption: {
    default: 's3',
    doc: '`s3` (SSE-S3, free) or `kms` (a customer managed key with rotation, retained on teardown: $1/month plus requests, lets you audit and revoke access to the backup through the key policy).',
    parse: oneOf<BucketEncryptionKind>('s3', 'kms'),
  },
  archiveStorageClass: {
    default: 'GLACIER_IR',
    doc: 'Storage class that assets move to. GLACIER_IR (Glacier Instant Retrieval) keeps every object readable in milliseconds, so `npm run pull` and a restore need no thaw jobs, for ~10% more than GLACIER (Flexible Retrieval, 3-5 h restores) and without its 40 KB per-object overhead; DEEP_ARCHIVE is cheapest but restores take up to 48 h.',
    parse: oneOf<ArchiveStorageClass>('GLACIER_IR', 'GLACIER', 'DEEP_ARCHIVE'),
  },
  archiveAfterDays: {
    default: 7,
    doc: "Days an asset stays in S3 Standard before moving to the archive class: a week to notice a bad first run and delete it without paying the archive classes' 90-day minimum.",
    parse: integer(0, 3650),
  },
  noncurrentArchiveAfterDays: {
    default: 7,
    doc: 'Days a replaced (noncurrent) version stays in S3 Standard before moving to the archive class.',
    parse: integer(0, 3650),
  },
  noncurrentExpireAfterDays: {
    default: 0,
    doc: 'Days after which replaced versions are deleted; 0 keeps every version forever (the point of a backup). Must exceed noncurrentArchiveAfterDays.',
    parse: integer(0, 36500),
  },
  abortIncompleteUploadAfterDays: {
    default: 3,
    doc: 'Days after which the parts of a multipart upload that never completed (a worker killed mid-upload) are deleted; nothing else cleans them up and they are billed.',
    parse: integer(1, 365),
  },
  objectLockDays: {
    default: 30,
    doc: 'Object Lock in governance mode: every new version is protected from deletion for this many days, so a leaked key or a mistaken command cannot erase recent history (the bucket policy also denies bypassing it to all but breakGlassRoleArn). 0 leaves it off. Decide before the first deploy: once on it cannot be turned off, and if you change it later, check `cdk diff` for a bucket replacement first.',
    parse: integer(0, 36500),
  },
  maxReceives: {
    default: 5,
    doc: 'Deliveries of one work item before the worker moves it to the DLQ with the reason (MAX_RECEIVES); the queue redrive is set one higher as a safety net.',
    parse: integer(1, 100),
  },
  workerTimeoutSeconds: {
    default: 900,
    doc: 'Replicate function timeout. 15 minutes lets a 5 GiB video stream through at 6 MB/s; the work queue visibility timeout is 6 times this.',
    parse: integer(30, 900),
  },
  workerMemoryMb: {
    default: 1024,
    doc: 'Replicate function memory. Streaming needs workerAssetConcurrency x (uploadQueueSize + 1) x partSizeMb + ~128 MB (288 MB by default); 1 GB also buys Lambda network and CPU share, so copies finish sooner for about the same GB-seconds.',
    parse: integer(128, 10240),
  },
  workerBatchSize: {
    default: 8,
    doc: 'Work items per replicate invocation (1-10): two rounds of workerAssetConcurrency, so a batch of large videos still fits one timeout.',
    parse: integer(1, 10),
  },
  workerAssetConcurrency: {
    default: 4,
    doc: 'Assets one replicate invocation copies at once (WORKER_CONCURRENCY); each holds up to (uploadQueueSize + 1) x partSizeMb in memory.',
    parse: integer(1, 64),
  },
  workerMaxConcurrency: {
    default: 5,
    doc: "Most replicate invocations at once (event source maximum concurrency, 2-1000). 5 fits new accounts' 10-execution Lambda quota and stays gentle with Cloudinary bandwidth.",
    parse: integer(2, 1000),
  },
  partSizeMb: {
    default: 8,
    doc: 'Multipart part size (PART_SIZE_MB, >= 5). At most 10,000 parts per object, so the largest asset is 10,000 x this (78 GiB at 8 MB).',
    parse: integer(5, 512),
  },
  uploadQueueSize: {
    default: 4,
    doc: 'Parts uploaded in parallel per asset (UPLOAD_QUEUE_SIZE).',
    parse: integer(1, 32),
  },
  enumeratorTimeoutSeconds: {
    default: 900,
    doc: 'Enumerate function timeout; it checkpoints and schedules its own continuation before this deadline.',
    parse: integer(60, 900),
  },
  enumeratorMemoryMb: {
    default: 512,
    doc: 'Enumerate function memory: one 500-asset page and a gzip stream of the manifest at a time.',
    parse: integer(128, 10240),
  },
  adminReserve: {
    default: '2%',
    doc: 'Admin API calls per hour the enumerator leaves unused (ADMIN_RESERVE), for you and other tools: a number of calls, or a share of the hourly limit Cloudinary reports (2%: 10 of 500 on the free plan, 40 of 2,000 on paid plans). It pauses and continues after the hourly reset.',
    parse: adminReserveSetting,
  },
  listingApi: {
    default: 'search',
    doc: '`search` (Search API, the engine default: tags, context and structured metadata in the same page) or `resources` (Admin API resource listings). Both count against the Admin API hourly limit.',
    parse: oneOf<ListingApi>('resources', 'search'),
  },
  reconcileEveryDays: {
    default: 7,
    doc: 'Days between full listings (RECONCILE_EVERY_DAYS): they find deletions and anything the daily runs missed. The runs between list only what changed since the last run through Search (a few Admin calls instead of one per 500 assets). 0 lists everything every run. Accounts without Search always list everything.',
    parse: integer(0, 365),
  },
  resourceTypes: {
    default: ['image', 'video', 'raw'],
    doc: 'Cloudinary resource types to back up (RESOURCE_TYPES); audio counts as video.',
    parse: list(/^[a-z]+$/u, 'resource types', RESOURCE_TYPES),
  },
  deliveryTypes: {
    default: ['upload', 'private', 'authenticated'],
    doc: 'Cloudinary delivery types to back up (DELIVERY_TYPES): the ones that hold originals you uploaded.',
    parse: list(/^[a-z_]+$/u, 'delivery types such as upload'),
  },
  scheduleExpression: {
    default: 'cron(0 3 * * ? *)',
    doc: 'When the daily run starts (EventBridge Scheduler cron or rate expression): 03:00, before most people start uploading.',
    parse: scheduleExpression(),
  },
  scheduleTimeZone: {
    default: 'UTC',
    doc: 'IANA time zone of scheduleExpression, e.g. Europe/Paris (daylight saving handled by the Scheduler).',
    parse: timeZone(),
  },
  scheduleEnabled: {
    default: true,
    doc: 'false pauses the daily run (invoking the enumerate function by hand still works).',
    parse: boolean(),
  },
  alarmEmail: {
    default: undefined,
    doc: 'E-mail address subscribed to the alarm topic (confirm the e-mail AWS sends). Unset: subscribe yourself to the AlarmTopicArn output.',
    parse: optional(text(/^[^\s@]+@[^\s@]+\.[^\s@]+$/u, 'an e-mail address')),
  },
  staleRunAlarmHours: {
    default: 36,
    doc: 'Alarm when no run has finished (listed, and every copy it queued settled) for this many hours: one missed daily run plus half a day for a rate-limited listing to finish.',
    parse: integer(2, 168),
  },
  queueAgeAlarmHours: {
    default: 12,
    doc: 'With extraAlarms: alarm when an asset has waited this long in the work queue: the workers are failing as a whole (a denied key, a bad deploy) or cannot keep up.',
    parse: integer(1, 96),
  },
  extraAlarms: {
    default: false,
    doc: 'Three more alarms, $0.10 a month each: enumerator errors, worker throttles and queue age. Each says sooner what the default three already catch (a run that does not finish, dead letters, failing workers).',
    parse: boolean(),
  },
  dashboard: {
    default: true,
    doc: 'A CloudWatch dashboard of runs, assets, bytes, the Admin API budget, queues and Lambda health. An account has three dashboards free; each one more costs $3 a month, more than the rest of a small deployment: false leaves it out (the alarms stay).',
    parse: boolean(),
  },
  enumeratorSingleInstance: {
    default: true,
    doc: 'Reserve a concurrency of 1 for the enumerate function so the daily start, a continuation and run-now never run at once. A new account whose Lambda concurrency quota is 10 cannot reserve any: set false there (overlapping starts then stop on the run record lock instead).',
    parse: boolean(),
  },
  webhooks: {
    default: false,
    doc: 'A public HTTPS endpoint (a Lambda function URL) for Cloudinary webhook notifications: uploads and overwrites are copied within a minute, deletions, renames and tag or context changes recorded. Register it with `npm run webhook -- --register`. Off: the daily run alone.',
    parse: boolean(),
  },
  webhookConcurrency: {
    default: 2,
    doc: 'Reserved concurrency of the webhook function: the throttle on its public URL (beyond it callers get 429 and Cloudinary retries). Reserving takes from the account quota; a new account whose quota is 10 cannot reserve any.',
    parse: integer(1, 100),
  },
  webhookSignatureAlgorithm: {
    default: 'sha1',
    doc: 'How Cloudinary signs notifications: sha1 (its default) or sha256 (accounts limited to SHA-256 signatures).',
    parse: oneOf('sha1', 'sha256'),
  },
  breakGlassRoleArn: {
    default: undefined,
    doc: 'ARN of an IAM role allowed to delete object versions, bypass Object Lock governance and change the bucket policy, versioning or lifecycle. Everyone else (the replicator included) is denied by the bucket policy; unset leaves only the account root user, who can always remove a bucket policy, and CloudFormation deploys.',
    parse: optional(text(/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/u, 'an IAM role ARN')),
  },
  cloudinarySecret: {
    default: undefined,
    doc: 'Name or ARN of an existing Secrets Manager secret holding CLOUDINARY_URL, for those who rotate it there or have one already ($0.40 a month). Unset: CLOUDINARY_URL lives in the SSM parameter cloudinaryParameter (no monthly fee).',
    parse: optional(text(SECRET_ID, 'a Secrets Manager secret name or ARN')),
  },
  cloudinaryParameter: {
    default: undefined,
    doc: 'Name of the SSM Parameter Store SecureString that holds CLOUDINARY_URL when no cloudinarySecret is set; you create it after the first deploy (README). Unset: /<stackName>/CLOUDINARY_URL.',
    parse: optional(
      text(/^(\/[\w.-]+)+$/u, 'an SSM parameter name such as /CloudinaryS3Replicator/CLOUDINARY_URL'),
    ),
  },
  logLevel: {
    default: 'INFO',
    doc: 'Powertools LOG_LEVEL of both functions.',
    parse: oneOf<LogLevel>('TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'CRITICAL', 'SILENT'),
  },
  logRetentionDays: {
    default: 30,
    doc: "Days CloudWatch keeps the functions' logs: long enough to investigate a month of runs, short enough to cost little.",
    parse: logRetention(),
  },
  serviceName: {
    default: 'cloudinary-s3-replicator',
    doc: 'POWERTOOLS_SERVICE_NAME: the `service` dimension of every custom metric and a field of every log line.',
    parse: text(/^[A-Za-z0-9._-]{1,64}$/u, 'letters, digits, ".", "_" or "-"'),
  },
  metricsNamespace: {
    default: 'CloudinaryS3Replicator',
    doc: 'POWERTOOLS_METRICS_NAMESPACE: CloudWatch namespace of the custom metrics the dashboard and alarms read.',
    parse: text(/^[A-Za-z0-9._/#:-]{1,255}$/u, 'a CloudWatch namespace'),
  },
};

export const KNOB_NAMES = Object.keys(KNOBS) as KnobName[];

/** `archiveAfterDays` → `REPLICATOR_ARCHIVE_AFTER_DAYS`. */
export function envVarFor(name: KnobName): string {
  return ENV_PREFIX + name.replace(/([a-z0-9])([A-Z])/gu, '$1_$2').toUpperCase();
}

/** `archiveAfterDays` → `replicator:archiveAfterDays`. */
export function contextKeyFor(name: KnobName): string {
  return CONTEXT_PREFIX + name;
}

/** Baseline memory of the Node runtime, the SDK clients and a batch of messages, beside the upload buffers. */
export const WORKER_BASE_MEMORY_MB = 128;

export interface ConfigSources {
  /** The app's context: cdk.json `context`, `-c key=value`, and CDK's own keys (ignored). */
  context: Record<string, unknown>;
  env: Record<string, string | undefined>;
}

/** Reads, validates and cross-checks every knob; throws one ConfigError listing every problem. */
export function readConfig({ context, env }: ConfigSources): ReplicatorConfig {
  const problems: string[] = [];
  problems.push(...unknownKeys(Object.keys(context), CONTEXT_PREFIX, contextKeyFor, 'context key'));
  problems.push(
    ...unknownKeys(
      Object.keys(env).filter((key) => env[key] !== undefined),
      ENV_PREFIX,
      envVarFor,
      'environment variable',
    ),
  );

  const config = {} as Record<KnobName, unknown>;
  for (const name of KNOB_NAMES) {
    const knob = KNOBS[name] as Knob<KnobName>;
    const envVar = envVarFor(name);
    const contextKey = contextKeyFor(name);
    const [source, raw] =
      env[envVar] !== undefined
        ? [`environment variable ${envVar}`, env[envVar]]
        : context[contextKey] !== undefined
          ? [`context key ${contextKey}`, context[contextKey]]
          : [undefined, undefined];
    if (source === undefined) {
      config[name] = knob.default;
      continue;
    }
    try {
      config[name] = knob.parse(raw);
    } catch (error) {
      if (!(error instanceof InvalidValue)) throw error;
      problems.push(`${name} (${source}): ${error.message} (default: ${formatDefault(knob.default)})`);
    }
  }
  if (problems.length === 0) problems.push(...crossCheck(config as unknown as ReplicatorConfig));
  if (problems.length > 0) {
    throw new ConfigError(`Invalid replicator configuration:\n  - ${problems.join('\n  - ')}`);
  }
  return config as unknown as ReplicatorConfig;
}

/** How a default reads in messages and the README. */
export function formatDefault(value: unknown): string {
  if (value === undefined) return 'unset';
  return Array.isArray(value) ? value.join(',') : String(value);
}

function unknownKeys(
  keys: string[],
  prefix: string,
  keyFor: (name: KnobName) => string,
  what: string,
): string[] {
  const known = new Map(KNOB_NAMES.map((name) => [keyFor(name), name]));
  return keys
    .filter((key) => key.startsWith(prefix) && !known.has(key))
    .map((key) => {
      const guess = closest(key, [...known.keys()]);
      return `unknown ${what} ${key}${guess ? ` (did you mean ${guess}?)` : ''}`;
    });
}

/** The nearest known key by edit distance, when it is near enough to be a typo. */
function closest(key: string, candidates: string[]): string | undefined {
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (!best || distance < best.distance) best = { candidate, distance };
  }
  return best && best.distance <= 3 ? best.candidate : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/** Rules that involve more than one knob. */
function crossCheck(config: ReplicatorConfig): string[] {
  const problems: string[] = [];
  const streamingMb =
    config.workerAssetConcurrency * (config.uploadQueueSize + 1) * config.partSizeMb + WORKER_BASE_MEMORY_MB;
  if (config.workerMemoryMb < streamingMb) {
    problems.push(
      `workerMemoryMb (${config.workerMemoryMb}) is too small to stream: workerAssetConcurrency ${config.workerAssetConcurrency} x (uploadQueueSize ${config.uploadQueueSize} + 1) x partSizeMb ${config.partSizeMb} + ${WORKER_BASE_MEMORY_MB} MB = ${streamingMb} MB; raise workerMemoryMb or lower one of the others`,
    );
  }
  if (
    config.noncurrentExpireAfterDays > 0 &&
    config.noncurrentExpireAfterDays <= config.noncurrentArchiveAfterDays
  ) {
    problems.push(
      `noncurrentExpireAfterDays (${config.noncurrentExpireAfterDays}) must be greater than noncurrentArchiveAfterDays (${config.noncurrentArchiveAfterDays}), or 0 to keep replaced versions forever`,
    );
  }
  return problems;
}

import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  contextKeyFor,
  envVarFor,
  RESOURCE_TYPES as INFRA_RESOURCE_TYPES,
  KNOB_NAMES,
  KNOBS,
  readConfig,
} from '../infra/config.js';
import type { ConfigSources } from '../infra/config.js';
import { RESOURCE_TYPES } from '../shared/constants.js';

function read(sources: Partial<ConfigSources>): ReturnType<typeof readConfig> {
  return readConfig({ context: {}, env: {}, ...sources });
}

function problemsOf(sources: Partial<ConfigSources>): string {
  try {
    read(sources);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('deploy configuration', () => {
  it('uses the documented defaults when nothing is set', () => {
    const config = read({});
    for (const name of KNOB_NAMES) expect({ [name]: config[name] }).toEqual({ [name]: KNOBS[name].default });
    expect(config).toMatchObject({
      stackName: 'CloudinaryS3Replicator',
      bucketEncryption: 's3',
      archiveStorageClass: 'GLACIER_IR',
      archiveAfterDays: 7,
      maxReceives: 5,
      workerTimeoutSeconds: 900,
      scheduleExpression: 'cron(0 3 * * ? *)',
      scheduleTimeZone: 'UTC',
      staleRunAlarmHours: 36,
      resourceTypes: ['image', 'video', 'raw'],
      deliveryTypes: ['upload', 'private', 'authenticated'],
    });
  });

  it('documents every knob, with its environment variable and context key', () => {
    for (const name of KNOB_NAMES) {
      expect({ name, doc: KNOBS[name].doc }).toEqual({ name, doc: expect.stringMatching(/^.{30,}$/u) });
      expect(envVarFor(name)).toMatch(/^REPLICATOR_[A-Z0-9_]+$/u);
      expect(contextKeyFor(name)).toBe(`replicator:${name}`);
    }
    expect(envVarFor('workerMaxConcurrency')).toBe('REPLICATOR_WORKER_MAX_CONCURRENCY');
  });

  it('reads cdk.json values of any JSON type and -c strings alike', () => {
    const config = read({
      context: {
        'replicator:archiveAfterDays': 30,
        'replicator:scheduleEnabled': 'false',
        'replicator:resourceTypes': ['image', 'video'],
        'replicator:deliveryTypes': 'upload, private',
        'replicator:alarmEmail': 'me@example.com',
      },
    });
    expect(config).toMatchObject({
      archiveAfterDays: 30,
      scheduleEnabled: false,
      resourceTypes: ['image', 'video'],
      deliveryTypes: ['upload', 'private'],
      alarmEmail: 'me@example.com',
    });
  });

  it('lets an environment variable override cdk.json, and an empty one clear an optional knob', () => {
    const config = read({
      context: { 'replicator:workerMemoryMb': 2048, 'replicator:alarmEmail': 'me@example.com' },
      env: { REPLICATOR_WORKER_MEMORY_MB: '1536', REPLICATOR_ALARM_EMAIL: '' },
    });
    expect(config.workerMemoryMb).toBe(1536);
    expect(config.alarmEmail).toBeUndefined();
  });

  it('ignores CDK feature flags and unrelated environment variables', () => {
    const config = read({
      context: { '@aws-cdk/core:newStyleStackSynthesis': true, 'aws:cdk:bundling-stacks': [] },
      env: { PATH: '/usr/bin', AWS_REGION: 'eu-west-1', REPLICATE: 'x' },
    });
    expect(config.stackName).toBe('CloudinaryS3Replicator');
  });

  it('rejects a misspelt knob and suggests the right one', () => {
    expect(problemsOf({ context: { 'replicator:archiveAfterDay': 3 } })).toContain(
      'unknown context key replicator:archiveAfterDay (did you mean replicator:archiveAfterDays?)',
    );
    expect(problemsOf({ env: { REPLICATOR_ALARM_EMIAL: 'me@example.com' } })).toContain(
      'unknown environment variable REPLICATOR_ALARM_EMIAL (did you mean REPLICATOR_ALARM_EMAIL?)',
    );
  });

  it('names the knob, where its value came from and its default when a value is wrong', () => {
    expect(problemsOf({ env: { REPLICATOR_WORKER_BATCH_SIZE: '20' } })).toContain(
      'workerBatchSize (environment variable REPLICATOR_WORKER_BATCH_SIZE): expected a whole number from 1 to 10, got 20 (default: 8)',
    );
    expect(problemsOf({ context: { 'replicator:archiveStorageClass': 'GLACIER_DEEP' } })).toContain(
      'archiveStorageClass (context key replicator:archiveStorageClass): expected one of GLACIER_IR, GLACIER, DEEP_ARCHIVE',
    );
    expect(problemsOf({ context: { 'replicator:maxReceives': 2.5 } })).toContain('maxReceives');
    expect(problemsOf({ env: { REPLICATOR_SCHEDULE_ENABLED: 'yes' } })).toContain('expected true or false');
    expect(problemsOf({ env: { REPLICATOR_LOG_RETENTION_DAYS: '45' } })).toContain('CloudWatch Logs accepts');
    expect(problemsOf({ env: { REPLICATOR_RESOURCE_TYPES: 'image,audio' } })).toContain('audio not allowed');
    expect(problemsOf({ env: { REPLICATOR_DELIVERY_TYPES: 'upload,upload' } })).toContain('repeats an entry');
    expect(problemsOf({ env: { REPLICATOR_ALARM_EMAIL: 'not-an-address' } })).toContain('alarmEmail');
    expect(problemsOf({ env: { REPLICATOR_STACK_NAME: '1-bad_name' } })).toContain('stackName');
  });

  it('reports every problem at once', () => {
    const message = problemsOf({
      env: { REPLICATOR_MAX_RECEIVES: '0', REPLICATOR_LOG_LEVEL: 'LOUD', REPLICATOR_TYPO: '1' },
    });
    expect(message).toContain('maxReceives');
    expect(message).toContain('logLevel');
    expect(message).toContain('REPLICATOR_TYPO');
  });

  it('accepts Scheduler cron and rate expressions and refuses anything else', () => {
    expect(read({ env: { REPLICATOR_SCHEDULE_EXPRESSION: 'cron(15 2 ? * SUN *)' } }).scheduleExpression).toBe(
      'cron(15 2 ? * SUN *)',
    );
    expect(read({ env: { REPLICATOR_SCHEDULE_EXPRESSION: 'rate(12 hours)' } }).scheduleExpression).toBe(
      'rate(12 hours)',
    );
    for (const bad of ['0 3 * * *', 'cron(0 3 * * *)', 'cron(0 3 * * * *)', 'rate(1 days)', 'daily']) {
      expect({ bad, problems: problemsOf({ env: { REPLICATOR_SCHEDULE_EXPRESSION: bad } }) }).toEqual({
        bad,
        problems: expect.stringContaining('scheduleExpression'),
      });
    }
  });

  it('accepts IANA time zones only', () => {
    expect(read({ env: { REPLICATOR_SCHEDULE_TIME_ZONE: 'America/New_York' } }).scheduleTimeZone).toBe(
      'America/New_York',
    );
    expect(problemsOf({ env: { REPLICATOR_SCHEDULE_TIME_ZONE: 'Mars/Olympus' } })).toContain(
      'IANA time zone',
    );
  });

  it('refuses a worker too small to hold its upload buffers', () => {
    expect(
      problemsOf({ env: { REPLICATOR_WORKER_MEMORY_MB: '256', REPLICATOR_PART_SIZE_MB: '16' } }),
    ).toContain('workerMemoryMb (256) is too small to stream');
  });

  it('refuses to expire replaced versions before they are archived', () => {
    expect(
      problemsOf({
        env: { REPLICATOR_NONCURRENT_EXPIRE_AFTER_DAYS: '7', REPLICATOR_NONCURRENT_ARCHIVE_AFTER_DAYS: '7' },
      }),
    ).toContain('noncurrentExpireAfterDays (7) must be greater than noncurrentArchiveAfterDays (7)');
  });

  it('allows exactly the resource types the engine knows', () => {
    expect([...INFRA_RESOURCE_TYPES]).toEqual([...RESOURCE_TYPES]);
  });

  it('accepts an existing secret by name, partial or complete ARN', () => {
    for (const secret of [
      'prod/cloudinary',
      'arn:aws:secretsmanager:eu-west-1:123456789012:secret:cloudinary',
      'arn:aws:secretsmanager:eu-west-1:123456789012:secret:cloudinary-AbC123',
    ]) {
      expect(read({ env: { REPLICATOR_CLOUDINARY_SECRET: secret } }).cloudinarySecret).toBe(secret);
    }
    expect(problemsOf({ env: { REPLICATOR_CLOUDINARY_SECRET: 'has spaces' } })).toContain('cloudinarySecret');
  });
});

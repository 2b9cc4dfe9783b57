import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { GetScheduleCommand, ListSchedulesCommand, SchedulerClient } from '@aws-sdk/client-scheduler';
import {
  ChangeMessageVisibilityCommand,
  GetQueueAttributesCommand,
  SendMessageCommand,
  type Message,
} from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAwsClients, type AwsClients } from '../shared/aws/clients.js';
import { DynamoStateStore } from '../shared/aws/DynamoStateStore.js';
import { SqsWorkQueue } from '../shared/aws/SqsWorkQueue.js';
import { objectKeyFor } from '../shared/keys.js';
import { reserveFor, settingsFromEnv, type AdminReserve } from '../shared/config.js';
import { generateLibrary, startCloudinaryDouble } from './double/index.js';
import type { CloudinaryDouble } from './double/types.js';
import { useMotoEnvironment } from './support/awsTestBed.js';
import {
  readCloudAssembly,
  synthesize,
  type CloudAssembly,
  type DeployedFunction,
} from './support/cloudAssembly.js';
import {
  mappingEnabled,
  pollBatch,
  queueTriggers,
  scheduleTriggers,
  settleBatch,
  type QueueTrigger,
  type ScheduleTrigger,
} from './support/eventSources.js';
import { invokeDeployed, runtimeMajor, type Invocation } from './support/lambdaProcess.js';
import { sourceAsset } from './support/assetFactories.js';
import { idOf } from './support/pipelineBed.js';
import { provisionTemplate, REGION, type TemplateBed } from './support/templateBed.js';
import { resolveEnvironment } from './support/templateIntrinsics.js';

const TINY = { image: [2_000, 30_000], video: [20_000, 80_000], raw: [500, 8_000] } as const;

let outdir: string;
let assembly: CloudAssembly;
let bed: TemplateBed;
let clients: AwsClients;
let double: CloudinaryDouble;
let endpoint: string;
let daily: ScheduleTrigger;
let work: QueueTrigger;
let enumerateFn: DeployedFunction;
let replicateFn: DeployedFunction;
/** Admin calls the enumerator leaves unused (ADMIN_RESERVE as the template sets it). */
let reserve: AdminReserve;

function functionById(logicalId: string): DeployedFunction {
  const fn = assembly.functions.find((f) => f.logicalId === logicalId);
  if (!fn) throw new Error(`no function ${logicalId} in the assembly`);
  return fn;
}

function environmentOf(fn: DeployedFunction): Record<string, string> {
  return resolveEnvironment(fn.environment, bed.ctx, fn.logicalId);
}

/** Invokes `fn` from cdk.out as Lambda would, with its template environment less `without` (plus `extra`). */
async function invoke(
  fn: DeployedFunction,
  event: unknown,
  without?: string,
  extra: Record<string, string> = {},
): Promise<Invocation> {
  const environment = { ...environmentOf(fn), ...extra };
  if (without) delete environment[without];
  const bound = bed.resource(fn.logicalId);
  return invokeDeployed(fn, event, {
    environment,
    functionName: bound.ref,
    functionArn: bound.attributes.Arn ?? '',
    awsEndpoint: endpoint,
    region: REGION,
    killAfterMs: 120_000,
  });
}

function succeeded(outcome: Invocation): unknown {
  if (!outcome.ok) {
    throw new Error(
      `${outcome.errorType}: ${outcome.errorMessage}\n${outcome.stack.join('\n')}\n${outcome.logs}`,
    );
  }
  return outcome.result;
}

/** The double's Admin API budget per hour, as last set. */
let adminLimit = 500;

function setAdminLimit(limit: number): void {
  adminLimit = limit;
  double.setRateLimit(limit);
}

/**
 * Sets the double's budget so that the next Admin call leaves exactly the reserve the template's
 * ADMIN_RESERVE keeps (a number of calls, or a share of the limit): one call, then a pause.
 */
function leaveReserve(): void {
  const used = adminLimit - double.rateLimitRemaining();
  for (let left = 0; left < 10_000; left++) {
    if (reserveFor(reserve, used + left + 1) === left) return setAdminLimit(used + left + 1);
  }
  throw new Error(`no Admin API limit leaves exactly the reserve ${String(reserve)}`);
}

beforeAll(async () => {
  outdir = mkdtempSync(join(tmpdir(), 'replicator-deployed-'));
  // A parameter of its own: other suites on this moto server deploy the same stack.
  synthesize(outdir, {
    REPLICATOR_CLOUDINARY_PARAMETER: `/deployed-${process.pid}-${Date.now()}/CLOUDINARY_URL`,
  });
  assembly = readCloudAssembly(outdir);
  endpoint = useMotoEnvironment();
  clients = createAwsClients();
  // A frozen clock half an hour ahead: the rate-limit window never rolls over during the test, its
  // reset stays in the handlers' future, and signed download URLs (valid an hour) stay valid.
  const frozen = new Date(Date.now() + 30 * 60_000);
  double = await startCloudinaryDouble({
    library: generateLibrary({
      seed: 'deployed',
      counts: {
        image: { upload: 5, private: 1 },
        video: { upload: 1 },
        raw: { upload: 1, authenticated: 1 },
      },
      sizes: TINY,
    }),
    now: () => frozen,
    rateLimitPerHour: adminLimit,
  });
  bed = await provisionTemplate(assembly, clients, double.cloudinaryUrl);
  const schedules = scheduleTriggers(assembly.template, bed.ctx);
  if (schedules.length !== 1)
    throw new Error(`expected one schedule in the template, found ${schedules.length}`);
  daily = schedules[0] as ScheduleTrigger;
  enumerateFn = functionById(
    bed
      .logicalIds('AWS::Lambda::Function')
      .find((id) => bed.resource(id).attributes.Arn === daily.functionArn) ?? '',
  );
  const queues = queueTriggers(assembly.template, bed.ctx);
  if (queues.length !== 1) throw new Error(`expected one SQS event source, found ${queues.length}`);
  work = queues[0] as QueueTrigger;
  replicateFn = functionById(work.functionLogicalId);
  reserve = settingsFromEnv({ ADMIN_RESERVE: environmentOf(enumerateFn).ADMIN_RESERVE }).adminReserve;
}, 240_000);

afterAll(async () => {
  await double?.close();
  if (outdir) rmSync(outdir, { recursive: true, force: true });
});

/** Feeds the work queue to the replicate bundle the way the event source mapping does, until it is empty. */
async function drainWorkQueue(): Promise<number> {
  let invocations = 0;
  for (let round = 0; round < 50; round += 1) {
    const { messages, event } = await pollBatch(clients, work);
    if (messages.length === 0) return invocations;
    for (const record of event.Records) {
      expect(record.attributes.ApproximateReceiveCount).toBe('1');
      expect(record.eventSourceARN).toBe(work.queueArn);
    }
    invocations += 1;
    const response = succeeded(await invoke(replicateFn, event)) as SQSBatchResponse;
    expect(response.batchItemFailures).toEqual([]);
    await settleBatch(
      clients,
      work,
      messages,
      response.batchItemFailures.map((f) => f.itemIdentifier),
    );
  }
  throw new Error('the work queue did not drain in 50 batches');
}

async function queueDepth(url: string): Promise<number> {
  const attrs = await clients.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return (
    Number(attrs.Attributes?.ApproximateNumberOfMessages ?? 0) +
    Number(attrs.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0)
  );
}

describe('the bundles in cdk.out, run as Lambda runs them against the test bed', { timeout: 300_000 }, () => {
  it('back up the whole library: the daily schedule starts, a continuation resumes, SQS batches copy', async () => {
    const env = environmentOf(enumerateFn);
    // The first invocation may make one Admin call before it must keep the reserve: it pauses.
    leaveReserve();
    const first = succeeded(await invoke(enumerateFn, daily.event)) as { runId: string; status: string };
    expect(first.status).toBe('paused');

    // The continuation exactly as the handler scheduled it: the Scheduler will send its Input.
    const scheduler = new SchedulerClient({});
    const group = env.CONTINUATION_GROUP ?? '';
    const listed = await scheduler.send(new ListSchedulesCommand({ GroupName: group }));
    const mine = [];
    for (const summary of listed.Schedules ?? []) {
      const schedule = await scheduler.send(new GetScheduleCommand({ GroupName: group, Name: summary.Name }));
      const input = JSON.parse(schedule.Target?.Input ?? '{}') as { runId?: string };
      if (input.runId === first.runId) mine.push(schedule);
    }
    expect(mine).toHaveLength(1);
    const continuation = mine[0];
    expect(continuation?.Target).toMatchObject({
      Arn: bed.resource(enumerateFn.logicalId).attributes.Arn,
      RoleArn: env.CONTINUATION_ROLE_ARN,
    });

    setAdminLimit(500);
    const secondOutcome = await invoke(enumerateFn, JSON.parse(continuation?.Target?.Input ?? '{}'));
    const second = succeeded(secondOutcome) as {
      runId: string;
      status: string;
      counters: { listed: number };
    };
    expect(second).toMatchObject({ runId: first.runId, status: 'completed' });
    expect(second.counters.listed).toBe(double.library.size);
    // Listed but not yet copied: the run has not finished, so the stale-run alarm is not fed yet.
    expect(metricsOf(secondOutcome).map((metric) => metric.name)).not.toContain('RunsCompleted');

    expect(await drainWorkQueue()).toBeGreaterThan(0);

    const bucket = bed.resource(bed.logicalIds('AWS::S3::Bucket')[0] ?? '').ref;
    for (const asset of double.library.all()) {
      const key = objectKeyFor({
        resourceType: asset.resource_type,
        deliveryType: asset.type,
        publicId: asset.public_id,
        format: asset.format,
      });
      const head = await clients.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      expect({ key, bytes: head.ContentLength }).toEqual({ key, bytes: asset.bytes });
    }
    const state = new DynamoStateStore({ dynamo: clients.dynamo, table: env.TABLE_NAME ?? '' });
    const states = await state.getMany(double.library.all().map(idOf));
    expect([...states.values()].map((s) => s.status)).toEqual(double.library.all().map(() => 'replicated'));
    expect(await queueDepth(environmentOf(replicateFn).DLQ_URL ?? '')).toBe(0);

    // The settle check the enumerator scheduled once the listing ended: the copies are done, workers off.
    const settleCheck = await scheduledInput(group, { action: 'settle', runId: first.runId });
    const settleOutcome = await invoke(enumerateFn, settleCheck);
    const settled = succeeded(settleOutcome) as { workers?: string };
    expect(settled.workers).toBe('stopped');
    expect(metricsOf(settleOutcome)).toContainEqual({
      name: 'RunsCompleted',
      namespace: env.POWERTOOLS_METRICS_NAMESPACE,
      dimensions: { service: env.POWERTOOLS_SERVICE_NAME },
      value: 1,
    });
    expect(await mappingEnabled(work.mappingId ?? '')).toBe(false);
  });

  it('work queued while the workers are off waits in the queue, and the next daily run switches them on to copy it', async () => {
    // Prepare: the workers are off (the settled run above) and a message arrives without a start,
    // as when a sender crashed between its send and its start.
    expect(await mappingEnabled(work.mappingId ?? '')).toBe(false);
    const state = new DynamoStateStore({
      dynamo: clients.dynamo,
      table: environmentOf(enumerateFn).TABLE_NAME ?? '',
    });
    const runId = (await state.latestRun())?.runId ?? '';
    const raw = new SqsWorkQueue({ sqs: clients.sqs, queueUrl: work.queueUrl });
    await raw.sendBatch([{ runId, asset: sourceAsset({ publicId: 'left/behind' }) }]);
    // Act: the event source does not poll while off; then the next daily run starts.
    expect((await pollBatch(clients, work)).messages).toEqual([]);
    expect(await queueDepth(work.queueUrl)).toBe(1);
    setAdminLimit(500);
    const next = succeeded(await invoke(enumerateFn, daily.event)) as { status: string; workers?: string };
    // Assess: the run switched the workers on, they took the message, and nothing is left queued.
    expect(next.status).toBe('completed');
    expect(await mappingEnabled(work.mappingId ?? '')).toBe(true);
    await drainAnything();
    expect(await queueDepth(work.queueUrl)).toBe(0);
  });
});

/** The input of the one schedule in `group` whose input matches `expected`. */
async function scheduledInput(group: string, expected: Record<string, string>): Promise<unknown> {
  const scheduler = new SchedulerClient({});
  const listed = await scheduler.send(new ListSchedulesCommand({ GroupName: group }));
  const inputs = [];
  for (const summary of listed.Schedules ?? []) {
    const schedule = await scheduler.send(new GetScheduleCommand({ GroupName: group, Name: summary.Name }));
    const input = JSON.parse(schedule.Target?.Input ?? '{}') as Record<string, string>;
    if (Object.entries(expected).every(([k, v]) => input[k] === v)) inputs.push(input);
  }
  expect(inputs).toHaveLength(1);
  return inputs[0];
}

/** Feeds every queued message to the replicate bundle, whatever its outcome, until none is left. */
async function drainAnything(): Promise<void> {
  for (let round = 0; round < 20; round += 1) {
    const { messages, event } = await pollBatch(clients, work);
    if (messages.length === 0) return;
    const response = succeeded(await invoke(replicateFn, event)) as SQSBatchResponse;
    await settleBatch(
      clients,
      work,
      messages,
      response.batchItemFailures.map((f) => f.itemIdentifier),
    );
  }
}

/** The variables of `fn` that name a resource of the stack (a table, a queue, a role, a group...). */
function resourceVariables(fn: DeployedFunction): string[] {
  const names = new Set<string>();
  for (const bound of bed.ctx.resources.values()) {
    names.add(bound.ref);
    for (const value of Object.values(bound.attributes)) names.add(value);
  }
  return Object.entries(fn.environment)
    .filter(([, value]) => typeof value === 'object' || names.has(String(value)))
    .map(([name]) => name);
}

/** The work message the enumerator writes for an asset it found new: body and message attributes. */
async function enqueuedByEnumerator(): Promise<Message> {
  setAdminLimit(500);
  const run = succeeded(await invoke(enumerateFn, daily.event)) as { status: string };
  expect(run.status).toBe('completed');
  const { messages } = await pollBatch(clients, work);
  expect(messages).toHaveLength(1);
  const message = messages[0] as Message;
  await settleBatch(clients, work, [message], []);
  return message;
}

/**
 * Sends `message` again and receives it until its receive count reaches `receives`, as the event
 * source would redeliver it after failed invocations; returns the event of that last delivery.
 */
async function deliveredTimes(message: Message, receives: number): Promise<SQSEvent> {
  const sent = await clients.sqs.send(
    new SendMessageCommand({
      QueueUrl: work.queueUrl,
      MessageBody: message.Body,
      MessageAttributes: message.MessageAttributes,
    }),
  );
  for (let attempt = 0; attempt < receives; attempt += 1) {
    const { messages, event } = await pollBatch(clients, work);
    expect(messages.map((m) => m.MessageId)).toEqual([sent.MessageId]);
    if (Number(messages[0]?.Attributes?.ApproximateReceiveCount) >= receives) return event;
    await clients.sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: work.queueUrl,
        ReceiptHandle: messages[0]?.ReceiptHandle,
        VisibilityTimeout: 0,
      }),
    );
  }
  throw new Error(`message ${sent.MessageId} did not reach ${receives} receives`);
}

describe('the runtime the template names', () => {
  it("is the project's own Node major, and a template naming another one fails the test", async () => {
    for (const fn of [enumerateFn, replicateFn]) {
      expect(runtimeMajor(fn.runtime)).toBe(Number(process.versions.node.split('.')[0]));
    }
    const older = { ...replicateFn, runtime: `nodejs${runtimeMajor(replicateFn.runtime) - 2}.x` };
    await expect(invoke(older, { Records: [] })).rejects.toThrow(
      /runs nodejs\d+\.x on Lambda .* move both together/u,
    );
  });
});

describe('a stack that stops passing a variable the bundle needs', { timeout: 300_000 }, () => {
  it('makes the replicate bundle fail with an error that names the variable', async () => {
    const variables = resourceVariables(replicateFn);
    expect(variables).toEqual(
      expect.arrayContaining(['TABLE_NAME', 'BUCKET_NAME', 'QUEUE_URL', 'DLQ_URL', 'CLOUDINARY_PARAMETER']),
    );
    // An asset whose every download fails, on its last allowed receive: only dead-lettering remains.
    const publicId = 'deployed/always-500';
    double.library.add({ publicId, resourceType: 'image', format: 'jpg', bytes: 4_000 });
    double.faults.add({ route: ['delivery', 'download'], publicId, kind: 'status', status: 500 });
    const message = await enqueuedByEnumerator();
    const maxReceives = Number(environmentOf(replicateFn).MAX_RECEIVES);

    const outcomes = [];
    for (const name of variables) {
      const outcome = await invoke(replicateFn, await deliveredTimes(message, maxReceives), name);
      outcomes.push({ name, failed: !outcome.ok, named: !outcome.ok && outcome.errorMessage.includes(name) });
    }
    expect(outcomes).toEqual(variables.map((name) => ({ name, failed: true, named: true })));

    // With every variable the same delivery is dead-lettered with its reason and the batch succeeds.
    const dlq = environmentOf(replicateFn).DLQ_URL ?? '';
    const before = await queueDepth(dlq);
    const last = await deliveredTimes(message, maxReceives);
    const controlOutcome = await invoke(replicateFn, last);
    const control = succeeded(controlOutcome) as SQSBatchResponse;
    expect(control.batchItemFailures).toEqual([]);
    // Its log line carries the batch's message ids, so the dead letter can be traced to its deliveries.
    expect(logLines(controlOutcome).find((line) => line.message === 'gave up on asset')).toMatchObject({
      correlation_id: last.Records.map((record) => record.messageId),
    });
    expect(await queueDepth(dlq)).toBe(before + 1);
  });

  it('makes the enumerate bundle fail with an error that names the variable', async () => {
    const variables = resourceVariables(enumerateFn);
    expect(variables).toEqual(
      expect.arrayContaining([
        'TABLE_NAME',
        'BUCKET_NAME',
        'QUEUE_URL',
        'CLOUDINARY_PARAMETER',
        'CONTINUATION_GROUP',
        'CONTINUATION_ROLE_ARN',
        'WORKER_MAPPING_ID',
      ]),
    );
    // Each invocation may make one Admin call and must then pause: continuing needs the schedule
    // variables. A full listing (a day after a full one, a run would list only the changes: one call).
    const fullListing = { RECONCILE_EVERY_DAYS: '0' };
    leaveReserve();
    const control = succeeded(await invoke(enumerateFn, daily.event, undefined, fullListing)) as {
      status: string;
    };
    expect(control.status).toBe('paused');

    const outcomes = [];
    for (const name of variables) {
      leaveReserve();
      const outcome = await invoke(enumerateFn, daily.event, name, fullListing);
      outcomes.push({ name, failed: !outcome.ok, named: !outcome.ok && outcome.errorMessage.includes(name) });
    }
    expect(outcomes).toEqual(variables.map((name) => ({ name, failed: true, named: true })));
  });
});

/** The JSON lines a bundle wrote (Powertools logs and CloudWatch embedded metrics). */
function logLines(outcome: Invocation): Record<string, unknown>[] {
  return outcome.logs
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

interface EmbeddedMetrics {
  _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[] };
}

/** Each metric a bundle published: its namespace, dimensions (with their values) and value. */
function metricsOf(
  outcome: Invocation,
): { name: string; namespace: string; dimensions: Record<string, unknown>; value: unknown }[] {
  return logLines(outcome)
    .filter((line) => '_aws' in line)
    .flatMap((line) =>
      (line as unknown as EmbeddedMetrics)._aws.CloudWatchMetrics.flatMap((directive) =>
        directive.Metrics.map((metric) => ({
          name: metric.Name,
          namespace: directive.Namespace,
          dimensions: Object.fromEntries((directive.Dimensions[0] ?? []).map((d) => [d, line[d]])),
          value: line[metric.Name],
        })),
      ),
    );
}

describe('what the bundles report to CloudWatch', { timeout: 300_000 }, () => {
  it('a replicate batch reports a cold start, then its asset metrics under the dimension the alarms read', async () => {
    const env = environmentOf(replicateFn);
    const outcome = await invoke(replicateFn, { Records: [] });
    expect(succeeded(outcome)).toEqual({ batchItemFailures: [] });
    const service = { service: env.POWERTOOLS_SERVICE_NAME };
    expect(metricsOf(outcome)).toEqual(
      expect.arrayContaining([
        {
          name: 'ColdStart',
          namespace: env.POWERTOOLS_METRICS_NAMESPACE,
          dimensions: { ...service, function_name: bed.resource(replicateFn.logicalId).ref },
          value: 1,
        },
        ...['AssetsReplicated', 'BytesReplicated', 'AssetsFailed'].map((name) => ({
          name,
          namespace: env.POWERTOOLS_METRICS_NAMESPACE,
          dimensions: service,
          value: 0,
        })),
      ]),
    );
  });

  it('a continuation of an unknown run logs the error with the run id as correlation id, leaving the count to Lambda', async () => {
    const env = environmentOf(enumerateFn);
    const runId = 'run-nobody-started';
    const outcome = await invoke(enumerateFn, { action: 'continue', runId });
    if (outcome.ok) throw new Error('continuing a run nobody started succeeded');
    // The stack Lambda logs names the TypeScript line that threw, though no source map is loaded at start.
    expect(outcome.stack[1]).toMatch(/\/shared\/engine\/enumerate\.ts:\d+:\d+\)$/u);
    expect(logLines(outcome).find((line) => line.message === 'enumerate failed')).toMatchObject({
      level: 'ERROR',
      correlation_id: runId,
      function_name: bed.resource(enumerateFn.logicalId).ref,
      service: env.POWERTOOLS_SERVICE_NAME,
      error: expect.stringContaining(`run ${runId} does not exist`),
    });
    // Lambda's Errors metric (free) counts the failure; no custom metric is billed for it.
    expect(metricsOf(outcome).map((metric) => metric.name)).toEqual(['ColdStart']);
  });
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import type { LambdaFunctionURLEvent, LambdaFunctionURLResult, SQSBatchResponse } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAwsClients, type AwsClients } from '../shared/aws/clients.js';
import { DynamoStateStore } from '../shared/aws/DynamoStateStore.js';
import { webhookMain } from '../shared/cli/webhook.js';
import { objectKeyFor } from '../shared/keys.js';
import { startCloudinaryDouble, type CloudinaryDouble } from './double/index.js';
import { useMotoEnvironment } from './support/awsTestBed.js';
import { captureStreams } from './support/backupBed.js';
import {
  readCloudAssembly,
  synthesize,
  type CloudAssembly,
  type DeployedFunction,
} from './support/cloudAssembly.js';
import { pollBatch, queueTriggers, settleBatch, type QueueTrigger } from './support/eventSources.js';
import { startFunctionUrl, type FunctionUrl } from './support/functionUrl.js';
import { invokeDeployed, type Invocation } from './support/lambdaProcess.js';
import { provisionTemplate, REGION, type TemplateBed } from './support/templateBed.js';
import { resolveEnvironment } from './support/templateIntrinsics.js';

/** Issue 13: a signed upload notification leads to the asset verified in S3 within this time. */
const END_TO_END_BUDGET_MS = 60_000;

let outdir: string;
let assembly: CloudAssembly;
let bed: TemplateBed;
let clients: AwsClients;
let endpoint: string;
let double: CloudinaryDouble;
let work: QueueTrigger;
let webhookFn: DeployedFunction;
let replicateFn: DeployedFunction;
let functionUrl: FunctionUrl;
/** The logs of the webhook bundle's invocations, as CloudWatch would hold them. */
const webhookLogs: string[] = [];
/** The logs of the replicate bundle's invocations. */
const replicateLogs: string[] = [];
/** The requests the function URL turned into events. */
const webhookEvents: LambdaFunctionURLEvent[] = [];

function invoke(fn: DeployedFunction, event: unknown, without?: string): Promise<Invocation> {
  const bound = bed.resource(fn.logicalId);
  const environment = resolveEnvironment(fn.environment, bed.ctx, fn.logicalId);
  if (without) delete environment[without];
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
  if (!outcome.ok) throw new Error(`${outcome.errorType}: ${outcome.errorMessage}\n${outcome.logs}`);
  return outcome.result;
}

async function queueDepth(): Promise<number> {
  const attrs = await clients.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: work.queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages'],
    }),
  );
  return Number(attrs.Attributes?.ApproximateNumberOfMessages ?? 0);
}

/** The event source mapping: poll a batch, invoke the replicate bundle, delete what it did not report failed. */
async function drainWorkQueue(): Promise<void> {
  for (let round = 0; round < 10; round += 1) {
    const { messages, event } = await pollBatch(clients, work);
    if (messages.length === 0) return;
    const outcome = await invoke(replicateFn, event);
    replicateLogs.push(outcome.logs);
    const response = succeeded(outcome) as SQSBatchResponse;
    expect(response.batchItemFailures).toEqual([]);
    await settleBatch(
      clients,
      work,
      messages,
      response.batchItemFailures.map((f) => f.itemIdentifier),
    );
  }
}

beforeAll(async () => {
  outdir = mkdtempSync(join(tmpdir(), 'replicator-webhook-'));
  synthesize(outdir, {
    REPLICATOR_CLOUDINARY_PARAMETER: `/webhook-${process.pid}-${Date.now()}/CLOUDINARY_URL`,
    REPLICATOR_WEBHOOKS: 'true',
  });
  assembly = readCloudAssembly(outdir);
  endpoint = useMotoEnvironment();
  clients = createAwsClients();
  // The double's clock is real time: the bundle checks the notification's timestamp against its own clock.
  double = await startCloudinaryDouble({ seed: 'webhook-e2e' });
  bed = await provisionTemplate(assembly, clients, double.cloudinaryUrl);
  const queues = queueTriggers(assembly.template, bed.ctx);
  work = queues[0] as QueueTrigger;
  const byId = (id: string) => assembly.functions.find((f) => f.logicalId === id) as DeployedFunction;
  replicateFn = byId(work.functionLogicalId);
  const urlTarget = bed
    .logicalIds('AWS::Lambda::Url')
    .map(
      (id) =>
        (assembly.template.Resources[id]?.Properties?.TargetFunctionArn as { 'Fn::GetAtt': [string] })[
          'Fn::GetAtt'
        ][0],
    );
  if (urlTarget.length !== 1) throw new Error(`expected one function URL, found ${urlTarget.length}`);
  webhookFn = byId(urlTarget[0] ?? '');
  functionUrl = await startFunctionUrl(async (event) => {
    webhookEvents.push(event);
    const outcome = await invoke(webhookFn, event);
    webhookLogs.push(outcome.logs);
    return succeeded(outcome) as LambdaFunctionURLResult;
  });
  // Registered as a user would, the URL read from the stack's WebhookUrl output.
  const io = captureStreams();
  const code = await webhookMain(
    ['--register'],
    io.streams,
    { CLOUDINARY_URL: double.cloudinaryUrl },
    async (_s, name) => (name === 'WebhookUrl' ? functionUrl.url : undefined),
  );
  if (code !== 0) throw new Error(`npm run webhook -- --register failed: ${io.err()}`);
}, 300_000);

afterAll(async () => {
  await functionUrl?.close();
  await double?.close();
  if (outdir) rmSync(outdir, { recursive: true, force: true });
});

describe('the webhook bundle in cdk.out behind its function URL', { timeout: 300_000 }, () => {
  it(`copies a newly uploaded asset, verified in S3, within ${END_TO_END_BUDGET_MS / 1000} s of Cloudinary's notification`, async () => {
    const started = performance.now();
    const asset = await double.webhooks.upload({
      publicId: 'live/arrival',
      resourceType: 'image',
      format: 'jpg',
      bytes: 48_000,
    });
    const [delivery] = double.webhooks.attempts.slice(-1);
    expect(delivery?.status, webhookLogs.at(-1)).toBe(200);
    await drainWorkQueue();
    const key = objectKeyFor({
      resourceType: 'image',
      deliveryType: 'upload',
      publicId: 'live/arrival',
      format: 'jpg',
    });
    const head = await clients.s3.send(
      new HeadObjectCommand({
        Bucket: bed.resource(bed.logicalIds('AWS::S3::Bucket')[0] ?? '').ref,
        Key: key,
      }),
    );
    const state = new DynamoStateStore({
      dynamo: clients.dynamo,
      table: bed.resource(bed.logicalIds('AWS::DynamoDB::Table')[0] ?? '').ref,
    });
    const recorded = (await state.getMany(['image/upload/live/arrival'])).get('image/upload/live/arrival');
    const elapsed = performance.now() - started;
    // Reported with the test output: the measured time from the notification to the verified copy.
    console.info(
      `webhook end to end: signed upload notification to verified copy in S3 in ${Math.round(elapsed)} ms`,
    );
    expect(head.ContentLength).toBe(48_000);
    expect(recorded).toMatchObject({ status: 'replicated', version: asset.version, verifiedBy: 'md5' });
    expect(recorded?.md5).toBe(await double.library.md5Of(asset));
    expect(elapsed).toBeLessThan(END_TO_END_BUDGET_MS);
    // Webhook work belongs to no run: the worker has no run record to count it into, and says nothing about it.
    expect(replicateLogs.join('\n')).not.toContain('could not update the run counters');
  });

  it('answers a forged notification 401, enqueues nothing and keeps its body out of the log', async () => {
    const body = JSON.stringify({
      notification_type: 'upload',
      public_id: 'forged-canary-7c1',
      resource_type: 'image',
      version: 1,
      bytes: 1,
      asset_id: 'x',
    });
    const answer = await fetch(functionUrl.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-cld-timestamp': String(Math.floor(Date.now() / 1000)),
        'x-cld-signature': 'ab'.repeat(20),
      },
      body,
    });
    expect(answer.status).toBe(401);
    expect(await queueDepth()).toBe(0);
    const logs = webhookLogs.at(-1) ?? '';
    expect(logs).toContain('notification rejected');
    expect(logs).not.toContain('forged-canary-7c1');
    expect(logs).not.toContain('ab'.repeat(20));
    expect(logs).not.toContain(double.apiSecret);
  });

  it('answers an oversized body 413 without reading it', async () => {
    const answer = await fetch(functionUrl.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-cld-timestamp': '1', 'x-cld-signature': 'ab' },
      body: JSON.stringify({ notification_type: 'upload', padding: 'y'.repeat(1_100_000) }),
    });
    expect(answer.status).toBe(413);
    expect(webhookLogs.at(-1) ?? '').not.toContain('yyyy');
  });

  it('a captured notification sent again answers 200, enqueues nothing and leaves the copy as it is', async () => {
    const original = webhookEvents.find((e) => e.body?.includes('live/arrival'));
    expect(original).toBeDefined();
    const answer = await fetch(functionUrl.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-cld-timestamp': original?.headers['x-cld-timestamp'] ?? '',
        'x-cld-signature': original?.headers['x-cld-signature'] ?? '',
      },
      body: original?.body ?? '',
    });
    expect(answer.status).toBe(200);
    expect(((await answer.json()) as { outcomes: string[] }).outcomes).toEqual(['duplicate']);
    expect(await queueDepth()).toBe(0);
  });

  it('answers 500 (so Cloudinary retries) and names the variable when the stack stops passing one it needs', async () => {
    const original = webhookEvents.find((e) => e.body?.includes('live/arrival'));
    for (const name of ['TABLE_NAME', 'QUEUE_URL']) {
      const outcome = await invoke(webhookFn, original, name);
      expect(outcome.ok).toBe(true);
      expect((outcome.ok ? outcome.result : {}) as { statusCode?: number }).toMatchObject({
        statusCode: 500,
      });
      expect(outcome.logs).toContain(name);
    }
  });
});

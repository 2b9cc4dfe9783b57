import { CreateMultipartUploadCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVICE_USED_ACTIONS } from '../infra/constructs/index.js';
import { objectKeyFor } from '../shared/keys.js';
import { generateLibrary, startCloudinaryDouble, type CloudinaryDouble } from './double/index.js';
import { describeCall, type AwsCall } from './support/iam/awsOperations.js';
import { DeployedStack } from './support/iam/deployedRun.js';
import { startFunctionUrl } from './support/functionUrl.js';
import { WEBHOOK_EVENT_TYPES } from '../shared/webhook/notification.js';
import { describeDenials, evaluateCalls, grantedActions, type Evaluation } from './support/iam/evaluate.js';

const TINY = { image: [2_000, 30_000], video: [20_000, 80_000], raw: [500, 8_000] } as const;
const START = new Date('2026-03-01T10:15:00Z');

/**
 * Only what a fast, deterministic test needs beyond the template's own settings: small listing
 * pages (so a handful of assets spans several pages), no retry delay, no metrics output.
 */
const TEST_OVERRIDES = {
  LISTING_PAGE_SIZE: '10',
  RETRY_BASE_SECONDS: '0',
  POWERTOOLS_METRICS_DISABLED: 'true',
  POWERTOOLS_LOG_LEVEL: 'ERROR',
  LOG_LEVEL: 'ERROR',
};

interface Scenario {
  stack: DeployedStack;
  double: CloudinaryDouble;
  calls: AwsCall[];
  evaluation: Evaluation;
}

/**
 * One daily run of the deployed stack on moto, every AWS request recorded: the schedule starts
 * the enumerator, the Admin API budget runs out and it pauses with a continuation schedule, the
 * continuation finishes the listing and finalizes; the worker copies every asset (one multipart),
 * retries a flaky one and dead-letters one that is always refused; sending work switched the
 * workers on, and the settle check switches them off once the copies are done. The next day's run
 * copies a renamed asset inside the bucket.
 */
async function dailyRun(context: Record<string, string | undefined>): Promise<Scenario> {
  const library = generateLibrary({
    seed: 'iam',
    counts: { image: { upload: 18, private: 4 }, video: { upload: 2 }, raw: { upload: 4, authenticated: 2 } },
    sizes: TINY,
    large: [{ resourceType: 'video', type: 'upload', bytes: 12 * 1024 * 1024, publicId: 'long/take' }],
  });
  library.add({ publicId: 'flaky', resourceType: 'image', type: 'upload', format: 'jpg', bytes: 40_000 });
  library.add({ publicId: 'truncated', resourceType: 'image', type: 'upload', format: 'jpg', bytes: 40_000 });
  let now = START;
  const double = await startCloudinaryDouble({ library, rateLimitPerHour: 6, now: () => now });
  double.faults.add({ route: 'delivery', publicId: 'flaky', kind: 'status', status: 503, times: 1 });
  // Always refused: retried, then dead-lettered (a body cut short is continued where it stopped).
  double.faults.add({ route: ['delivery', 'download'], publicId: 'truncated', kind: 'status', status: 503 });
  // Cut after the first part: the download is continued from where it stopped, in the same upload.
  double.faults.add({
    route: 'delivery',
    publicId: 'long/take',
    kind: 'reset',
    afterBytes: 11 * 1024 * 1024,
    times: 1,
  });
  const settings = Object.fromEntries(Object.entries(context).filter(([, v]) => v !== undefined)) as Record<
    string,
    string
  >;
  const stack = await DeployedStack.create(double, settings, TEST_OVERRIDES);
  // An upload a dead copy left open: the worker aborts it before it copies the asset again.
  await stack.admin.s3.send(
    new CreateMultipartUploadCommand({
      Bucket: stack.resources.bucket,
      Key: objectKeyFor({
        resourceType: 'video',
        deliveryType: 'upload',
        publicId: 'long/take',
        format: 'mp4',
      }),
    }),
  );
  const clock = () => now;
  const first = await stack.invokeEnumerate(stack.dailyInput(), clock);
  expect(first.status, 'the budget is small enough to pause the listing').toBe('paused');
  await stack.drainWorkQueue(stack.batchSize());
  let outcome = first;
  for (let rounds = 0; outcome.status === 'paused' && rounds < 10; rounds++) {
    now = new Date(outcome.resumeAt ?? now);
    const continuation = await stack.lastContinuationInput();
    expect(continuation).toEqual({ action: 'continue', runId: first.runId });
    outcome = await stack.invokeEnumerate(continuation ?? {}, clock);
  }
  expect(outcome.status).toBe('completed');
  expect(outcome.workers, 'copies are left when the listing ends').toBe('copying');
  await stack.drainWorkQueue(stack.batchSize());
  // The settle check the enumerator scheduled: the copies are done, so it switches the workers off.
  const settle = await stack.lastContinuationInput();
  expect(settle).toEqual({ action: 'settle', runId: first.runId });
  const settled = await stack.invokeEnumerate(settle ?? {}, clock);
  expect(settled.workers).toBe('stopped');
  expect(await stack.workersEnabled()).toBe(false);

  // Near-real-time changes through the webhook: Cloudinary POSTs signed notifications to the
  // function URL (here a local one that invokes the handler with the webhook role).
  const functionUrl = await startFunctionUrl((event) => stack.invokeWebhook(event, clock));
  try {
    for (const type of WEBHOOK_EVENT_TYPES)
      double.webhooks.create({ uri: functionUrl.url, event_type: type });
    await double.webhooks.upload({ publicId: 'hooked', resourceType: 'image', format: 'jpg', bytes: 30_000 });
    await double.webhooks.rename('image', 'upload', 'hooked', 'hooked-renamed');
    await double.webhooks.notify('resource_tags_changed', {
      resources: [{ resource_type: 'image', type: 'upload', public_id: 'hooked-renamed', added: ['live'] }],
    });
    await double.webhooks.delete('image', 'upload', 'flaky');
    expect(double.webhooks.attempts.map((a) => a.status)).toEqual([200, 200, 200, 200]);
  } finally {
    await functionUrl.close();
  }
  await stack.drainWorkQueue(stack.batchSize());

  // The next day one asset is renamed: the run lists what changed (with Search) and the worker finds
  // the asset_id in the state index and copies the object inside the bucket (no download).
  now = new Date(now.getTime() + 86_400_000);
  const renamed = library
    .all()
    .find((a) => a.resource_type === 'image' && a.type === 'upload' && a.public_id.startsWith('photos/'));
  if (!renamed) throw new Error('the generated library has no image to rename');
  library.rename('image', renamed.type, renamed.public_id, `renamed/${renamed.public_id}`);
  now = new Date(now.getTime() + 60_000);
  let nextDay = await stack.invokeEnumerate(stack.dailyInput(), clock);
  for (let rounds = 0; nextDay.status === 'paused' && rounds < 10; rounds++) {
    now = new Date(nextDay.resumeAt ?? now);
    nextDay = await stack.invokeEnumerate((await stack.lastContinuationInput()) ?? {}, clock);
  }
  expect(nextDay.status).toBe('completed');
  await stack.drainWorkQueue(stack.batchSize());

  const calls = stack.proxy.requests
    .filter((r) => ['enumerate', 'replicate', 'webhook'].includes(r.principal))
    .map((r) => describeCall(r, { accountId: '123456789012' }));
  const evaluation = await evaluateCalls(calls, stack.principals(), stack.resourcePolicies(), '123456789012');
  return { stack, double, calls, evaluation };
}

function operations(calls: AwsCall[], principal: string): Set<string> {
  return new Set(calls.filter((c) => c.principal === principal).map((c) => c.operation));
}

/**
 * Granted for a path that exists but that this run cannot take; the same reason is written next
 * to the grant in infra/ReplicatorStack.ts.
 */
const NEEDED_ON_PATHS_NOT_TAKEN: Record<string, Record<string, string>> = {
  enumerate: {
    's3:AbortMultipartUpload':
      'a joined manifest past the part size (about 50,000 assets) is a multipart upload, aborted if it fails',
  },
  replicate: {
    's3:ListMultipartUploadParts':
      'a copy interrupted mid-file (kill, deadline, stall) is continued once ListParts shows its recorded parts',
    's3:GetObject':
      'a copy whose upload was completed by an attempt that died before recording it is found with HeadObject',
    'sqs:SendMessage':
      'a copy still running at the deadline after progress is handed to a next invocation with a new message',
  },
  webhook: {},
};

/** Granted actions that no request of either run used, and that the Lambda service does not use either. */
function unexercised(scenarios: Scenario[]): Record<string, string[]> {
  const result: Record<string, string[]> = {};
  for (const [name, principal] of scenarios[0]?.stack.principals() ?? []) {
    const used = new Set(scenarios.flatMap((s) => [...(s.evaluation.exercised.get(name) ?? [])]));
    const reasoned = NEEDED_ON_PATHS_NOT_TAKEN[name] ?? {};
    result[name] = [...grantedActions(principal)]
      .filter((a) => !used.has(a) && !(a in SERVICE_USED_ACTIONS) && !(a in reasoned))
      .sort();
  }
  return result;
}

const LISTINGS = [
  { listing: 'search (the default)', context: { 'replicator:webhooks': 'true' } },
  {
    listing: 'resources (no etag: the MD5 is tagged on the new version)',
    context: { 'replicator:listingApi': 'resources', 'replicator:webhooks': 'true' },
  },
];

describe('every AWS request of a deployed daily run is allowed by the template', () => {
  const scenarios: Scenario[] = [];

  beforeAll(async () => {
    for (const { context } of LISTINGS) scenarios.push(await dailyRun(context));
  }, 600_000);
  afterAll(async () => {
    for (const scenario of scenarios) {
      await scenario.stack.close();
      await scenario.double.close();
    }
  });

  describe.each(LISTINGS.map((l, index) => ({ ...l, index })))('listing with $listing', ({ index }) => {
    it('records the calls of every path: listing, manifest, leases, multipart, aborts, retries, dead letters, renames, the credentials, webhook notifications', () => {
      const scenario = scenarios[index] as Scenario;
      const enumerate = operations(scenario.calls, 'enumerate');
      const replicate = operations(scenario.calls, 'replicate');
      const webhook = operations(scenario.calls, 'webhook');
      for (const op of ['GetParameter', 'BatchGetItem', 'UpdateItem', 'SendMessageBatch']) {
        expect(webhook, op).toContain(op);
      }
      for (const op of [
        'GetParameter',
        'BatchGetItem',
        'SendMessageBatch',
        'PutObject',
        'CreateSchedule',
        'Scan',
        'GetEventSourceMapping',
        'UpdateEventSourceMapping',
        'GetQueueAttributes',
      ]) {
        expect(enumerate, op).toContain(op);
      }
      for (const op of [
        'GetParameter',
        'ReceiveMessage',
        'UpdateItem',
        'CreateMultipartUpload',
        'UploadPart',
        'CompleteMultipartUpload',
        'AbortMultipartUpload',
        'ChangeMessageVisibility',
        'SendMessage',
        'DeleteMessageBatch',
        'Query',
        'CopyObject',
        'HeadObject',
      ]) {
        expect(replicate, op).toContain(op);
      }
    });

    it('allows every request each function made (on failure: function, operation, ARN, missing action)', () => {
      expect(describeDenials((scenarios[index] as Scenario).evaluation.denials)).toBe('');
    });
  });

  it('grants no action that no path uses, except those the Lambda service uses on the function’s behalf', () => {
    expect(unexercised(scenarios)).toEqual({ enumerate: [], replicate: [], webhook: [] });
  });
});

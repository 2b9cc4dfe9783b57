import { Writable } from 'node:stream';
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replicateMain } from '../shared/cli/replicate.js';
import { awsEngineFromEnv, type AwsEngine } from '../shared/aws/engineFromEnv.js';
import { sqsEventFromMessages } from '../shared/aws/SqsWorkQueue.js';
import { emptyCounters, newRunId } from '../shared/engine/enumerate.js';
import { replicateRecords } from '../shared/engine/batch.js';
import type { FaultSpec } from './double/types.js';
import type { RunRecord, SourceAsset, WorkItem } from '../shared/types.js';
import { generateLibrary } from './double/index.js';
import type { DoubleAsset } from './double/types.js';
import { createPipelineBed, deadLetters, idOf, type PipelineBed } from './support/pipelineBed.js';

function quiet(): { stdout: Writable; stderr: Writable } {
  const sink = () =>
    new Writable({
      write(_chunk, _encoding, callback) {
        callback();
      },
    });
  return { stdout: sink(), stderr: sink() };
}

function downloadsOf(bed: PipelineBed, asset: DoubleAsset): number {
  return bed.double.requestLog.filter(
    (entry) => entry.publicId === asset.public_id && (entry.kind === 'delivery' || entry.kind === 'download'),
  ).length;
}

function run(runId: string, at: Date): RunRecord {
  return {
    runId,
    phase: 'completed',
    listings: {},
    counters: emptyCounters(),
    startedAt: at.toISOString(),
    updatedAt: at.toISOString(),
  };
}

describe('permanent failures, dead letters and run counters', { timeout: 120_000 }, () => {
  let bed: PipelineBed;
  let engine: AwsEngine;

  beforeAll(async () => {
    bed = await createPipelineBed(
      {
        library: generateLibrary({
          seed: 'failures',
          counts: { image: { upload: 8 } },
          sizes: { image: [2_000, 9_000] },
        }),
      },
      { DELIVERY_TYPES: 'upload', RESOURCE_TYPES: 'image', MAX_RECEIVES: '3' },
    );
    engine = await awsEngineFromEnv(process.env, bed.aws.clients);
  });
  afterAll(async () => bed?.close());

  /** A new version of `asset` at the source, as a listing describes it. */
  async function changed(asset: DoubleAsset): Promise<SourceAsset> {
    bed.double.library.overwrite('image', 'upload', asset.public_id);
    const page = await engine.source.listPage({ resourceType: 'image', deliveryType: 'upload' }, undefined);
    return page.assets.find((a) => a.publicId === asset.public_id) as SourceAsset;
  }
  const deps = () => ({
    source: engine.source,
    store: engine.store,
    state: engine.state,
    queue: engine.queue,
    maxReceives: engine.settings.maxReceives,
    retryBaseSeconds: 0,
  });
  /** One worker invocation over what the queue holds now, as the Lambda event source would deliver it. */
  async function deliverOnce(): Promise<number> {
    const attrs = await bed.aws.clients.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: bed.aws.queueUrl, AttributeNames: ['QueueArn'] }),
    );
    const received = await bed.aws.clients.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: bed.aws.queueUrl,
        MaxNumberOfMessages: 10,
        MessageSystemAttributeNames: ['All'],
      }),
    );
    const messages = received.Messages ?? [];
    if (messages.length === 0) return 0;
    const summary = await replicateRecords(
      deps(),
      sqsEventFromMessages(messages, attrs.Attributes?.QueueArn ?? '').Records,
      { deadline: Date.now() + 60_000 },
    );
    const failed = new Set(summary.batchItemFailures.map((f) => f.itemIdentifier));
    for (const m of messages) {
      if (failed.has(m.MessageId ?? '')) continue;
      await bed.aws.clients.sqs.send(
        new DeleteMessageCommand({ QueueUrl: bed.aws.queueUrl, ReceiptHandle: m.ReceiptHandle }),
      );
    }
    return messages.length;
  }

  it("an asset that fails permanently is quarantined and not downloaded again by the next day's run", async () => {
    const refused = bed.double.library.all()[0] as DoubleAsset;
    const fault = bed.double.faults.add({
      route: ['delivery', 'download'],
      publicId: refused.public_id,
      kind: 'status',
      status: 403,
    });

    await replicateMain([], quiet());
    const afterFirst = downloadsOf(bed, refused);
    const firstState = (await bed.state.getMany([idOf(refused)])).get(idOf(refused));
    const nextDay = await replicateMain([], quiet());

    expect(afterFirst).toBeGreaterThan(0);
    expect(firstState).toMatchObject({ status: 'quarantined', version: refused.version });
    expect(downloadsOf(bed, refused)).toBe(afterFirst);
    expect(nextDay).toBe(0);
    const letters = await deadLetters(bed);
    expect(letters.map((l) => l.publicId)).toEqual([refused.public_id]);

    bed.double.faults.remove(fault);
    const redriven = await replicateMain(['--redrive'], quiet());

    expect(redriven).toBe(0);
    expect(downloadsOf(bed, refused)).toBeGreaterThan(afterFirst);
    expect((await bed.state.getMany([idOf(refused)])).get(idOf(refused))?.status).toBe('replicated');
  });

  it('a permanent failure of a new version keeps the older copy, and is tried again once the version changes', async () => {
    const asset = bed.double.library.all()[1] as DoubleAsset;
    const fault = bed.double.faults.add({
      route: ['delivery', 'download'],
      publicId: asset.public_id,
      kind: 'status',
      status: 403,
    });
    const refusedVersion = bed.double.library.overwrite('image', 'upload', asset.public_id);
    await replicateMain([], quiet());
    const quarantined = (await bed.state.getMany([idOf(asset)])).get(idOf(asset));
    const tried = downloadsOf(bed, asset);

    await replicateMain([], quiet());

    expect(quarantined).toMatchObject({
      status: 'replicated',
      version: asset.version,
      quarantinedVersion: refusedVersion.version,
    });
    expect(downloadsOf(bed, asset)).toBe(tried);

    bed.double.faults.remove(fault);
    const nextVersion = bed.double.library.overwrite('image', 'upload', asset.public_id);
    await replicateMain([], quiet());

    expect((await bed.state.getMany([idOf(asset)])).get(idOf(asset))).toMatchObject({
      status: 'replicated',
      version: nextVersion.version,
    });
  });

  it('a dead letter keeps each distinct error of its attempts, not only the last', async () => {
    const flaky = bed.double.library.all()[2] as DoubleAsset;
    const at = new Date();
    const runId = newRunId(at);
    await engine.state.putRun(run(runId, at));
    const item: WorkItem = { runId, asset: await changed(flaky) };
    await engine.queue.sendBatch([item]);
    const attempts: FaultSpec[] = [
      { route: ['delivery', 'download'], publicId: flaky.public_id, kind: 'status', status: 500 },
      { route: ['delivery', 'download'], publicId: flaky.public_id, kind: 'short' },
      { route: ['delivery', 'download'], publicId: flaky.public_id, kind: 'status', status: 500 },
    ];

    for (const spec of attempts) {
      const fault = bed.double.faults.add(spec);
      expect(await deliverOnce()).toBe(1);
      bed.double.faults.remove(fault);
    }
    const letter = (await deadLetters(bed)).find((l) => l.publicId === flaky.public_id);

    expect(letter?.publicId).toBe(flaky.public_id);
    expect(letter?.reason).toMatch(/^2 different errors: /u);
    expect(letter?.reason).toMatch(/HTTP 500/u);
    expect(letter?.reason.split(' | ')).toHaveLength(2);
    expect((await bed.state.getMany([idOf(flaky)])).get(idOf(flaky))?.errors).toHaveLength(2);
  });

  it('copies made from an interrupted run’s messages are credited to the run doing the work', async () => {
    const yesterday = new Date(Date.now() - 86_400_000);
    const now = new Date();
    const older = newRunId(yesterday);
    const current = newRunId(now);
    await engine.state.putRun(run(older, yesterday));
    await engine.state.putRun(run(current, now));
    const left = bed.double.library.all().slice(4, 8);
    for (const asset of left) bed.double.library.overwrite('image', 'upload', asset.public_id);
    const fresh = (await engine.source.listPage({ resourceType: 'image', deliveryType: 'upload' }, undefined))
      .assets;
    await engine.queue.sendBatch(
      left.map((asset) => ({
        runId: older,
        asset: fresh.find((a) => a.publicId === asset.public_id) as SourceAsset,
      })),
    );

    while ((await deliverOnce()) > 0);

    expect((await engine.state.getRun(current))?.counters).toMatchObject({ replicated: 4, settled: 0 });
    expect((await engine.state.getRun(older))?.counters).toMatchObject({ replicated: 0, settled: 4 });
  });

  it('a run interrupted after its listing is finished first, and the progress says which copies it waits for', async () => {
    const asset = bed.double.library.all()[3] as DoubleAsset;
    const at = new Date();
    const interrupted: RunRecord = {
      ...run(newRunId(at), at),
      counters: { ...emptyCounters(), enqueued: 1 },
    };
    await engine.state.putRun(interrupted);
    await engine.queue.sendBatch([{ runId: interrupted.runId, asset: await changed(asset) }]);
    // A worker that received the message and then died: it stays hidden until its in-flight time lapses.
    const held = await bed.aws.clients.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: bed.aws.queueUrl,
        MaxNumberOfMessages: 1,
        VisibilityTimeout: 600,
      }),
    );
    const receipt = held.Messages?.[0]?.ReceiptHandle;
    let output = '';
    let lapsed = false;
    const stdout = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        output += chunk.toString('utf8');
        if (!lapsed && output.includes('"event":"pending"')) {
          lapsed = true;
          // The dead worker's in-flight time runs out now, instead of after a real wait.
          void bed.aws.clients.sqs
            .send(
              new ChangeMessageVisibilityCommand({
                QueueUrl: bed.aws.queueUrl,
                ReceiptHandle: receipt,
                VisibilityTimeout: 0,
              }),
            )
            .then(() => callback(), callback);
          return;
        }
        callback();
      },
    });

    const code = await replicateMain(['--json'], { stdout, stderr: quiet().stderr });
    const lines = output
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);

    expect(code).toBe(0);
    expect(lines.find((l) => l.event === 'message')?.message).toBe(
      `Finishing run ${interrupted.runId}, interrupted with 1 copy left.`,
    );
    expect(lines.find((l) => l.event === 'pending')).toMatchObject({
      runId: interrupted.runId,
      left: 1,
      inFlight: 1,
    });
    expect((await engine.state.getRun(interrupted.runId))?.counters).toMatchObject({
      replicated: 1,
      settled: 1,
    });
    expect((await bed.state.getMany([idOf(asset)])).get(idOf(asset))?.status).toBe('replicated');
  });
});

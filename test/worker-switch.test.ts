import { randomUUID } from 'node:crypto';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { PurgeQueueCommand } from '@aws-sdk/client-sqs';
import { beforeEach, describe, expect, it } from 'vitest';
import { DynamoStateStore } from '../shared/aws/DynamoStateStore.js';
import { EventSourceSwitch } from '../shared/aws/EventSourceSwitch.js';
import { SqsWorkQueue } from '../shared/aws/SqsWorkQueue.js';
import { emptyCounters } from '../shared/engine/enumerate.js';
import { settleWorkers, wakingQueue } from '../shared/engine/workers.js';
import type { RunRecord } from '../shared/types.js';
import { sourceAsset } from './support/assetFactories.js';
import { createAwsTestBed, type AwsTestBed } from './support/awsTestBed.js';
import { mappingEnabled, provisionWorkerMapping } from './support/eventSources.js';

let bed: AwsTestBed;
let mappingId: string;

/** A switch on a fresh mapping (created off, as the stack creates it); `lambda` may carry test middleware. */
function switchFor(lambda = new LambdaClient({})): EventSourceSwitch {
  return new EventSourceSwitch({ lambda, sqs: bed.clients.sqs, mappingId, queueUrl: bed.queueUrl });
}

const item = (runId: string) => ({ runId, asset: sourceAsset({ publicId: `p/${randomUUID()}` }) });

function run(runId: string, counters: Partial<RunRecord['counters']>, phase: RunRecord['phase']): RunRecord {
  const at = '2026-03-01T10:15:00.000Z';
  return {
    runId,
    phase,
    listings: {},
    counters: { ...emptyCounters(), ...counters },
    startedAt: at,
    updatedAt: at,
  };
}

beforeEach(async () => {
  bed = await createAwsTestBed();
  mappingId = (
    await provisionWorkerMapping(bed.endpoint, {
      name: `switch-${randomUUID().slice(0, 8)}`,
      enabled: false,
      batchSize: 8,
    })
  ).uuid;
});

describe('the workers’ event source', () => {
  it('is switched on by whatever sends work, after the send', async () => {
    // Prepare
    const queue = wakingQueue(
      new SqsWorkQueue({ sqs: bed.clients.sqs, queueUrl: bed.queueUrl }),
      switchFor(),
    );
    expect(await mappingEnabled(mappingId)).toBe(false);
    // Act
    await queue.sendBatch([item('r1')]);
    // Assess
    expect(await mappingEnabled(mappingId)).toBe(true);
  });

  it('stays off when nothing is sent (an empty batch)', async () => {
    const queue = wakingQueue(
      new SqsWorkQueue({ sqs: bed.clients.sqs, queueUrl: bed.queueUrl }),
      switchFor(),
    );
    await queue.sendBatch([]);
    expect(await mappingEnabled(mappingId)).toBe(false);
  });

  it('is switched off once the run is complete, every message settled and the queue empty', async () => {
    // Prepare: a run whose one message was copied and deleted.
    const workers = switchFor();
    await workers.start();
    const state = new DynamoStateStore({ dynamo: bed.clients.dynamo, table: bed.table });
    const runId = `2026-03-01T10-15-00-000Z-${randomUUID().slice(0, 6)}`;
    await state.putRun(run(runId, { enqueued: 1, settled: 1 }, 'completed'));
    // Act
    const outcome = await settleWorkers({ state, workers }, runId);
    // Assess
    expect(outcome).toBe('stopped');
    expect(await mappingEnabled(mappingId)).toBe(false);
  });

  it('keeps polling while a run still lists or has unsettled copies, and while anything is queued', async () => {
    const workers = switchFor();
    await workers.start();
    const state = new DynamoStateStore({ dynamo: bed.clients.dynamo, table: bed.table });
    const listing = `2026-03-01T10-15-00-000Z-${randomUUID().slice(0, 6)}`;
    await state.putRun(run(listing, { enqueued: 0 }, 'listing'));
    expect(await settleWorkers({ state, workers }, listing)).toBe('copying');

    const copying = `2026-03-02T10-15-00-000Z-${randomUUID().slice(0, 6)}`;
    await state.putRun(run(copying, { enqueued: 3, settled: 2 }, 'completed'));
    expect(await settleWorkers({ state, workers }, copying)).toBe('copying');

    // Settled, but a message from elsewhere (a webhook, an older run) waits in the queue.
    const settled = `2026-03-03T10-15-00-000Z-${randomUUID().slice(0, 6)}`;
    await state.putRun(run(settled, { enqueued: 1, settled: 1 }, 'completed'));
    await new SqsWorkQueue({ sqs: bed.clients.sqs, queueUrl: bed.queueUrl }).sendBatch([item('elsewhere')]);
    expect(await settleWorkers({ state, workers }, settled)).toBe('copying');
    expect(await mappingEnabled(mappingId)).toBe(true);

    // An older run's check leaves the decision to the newest run.
    expect(await settleWorkers({ state, workers }, copying)).toBe('superseded');
  });

  it('is switched back on when work arrives while it is being switched off, so the message is copied', async () => {
    // Prepare: a message is sent the moment the switch disables the mapping (a send racing the stop).
    const raw = new SqsWorkQueue({ sqs: bed.clients.sqs, queueUrl: bed.queueUrl });
    const lambda = new LambdaClient({});
    lambda.middlewareStack.add(
      (next) => async (args) => {
        if ((args.input as { Enabled?: boolean }).Enabled === false) await raw.sendBatch([item('racing')]);
        return next(args);
      },
      { step: 'initialize', name: 'sendDuringStop' },
    );
    const workers = switchFor(lambda);
    await workers.start();
    // Act
    const stopped = await workers.stopIfIdle();
    // Assess: it did not stay off with a message queued.
    expect(stopped).toBe(false);
    expect(await mappingEnabled(mappingId)).toBe(true);
    await bed.clients.sqs.send(new PurgeQueueCommand({ QueueUrl: bed.queueUrl }));
  });
});

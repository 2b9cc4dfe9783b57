import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { SQSRecord } from 'aws-lambda';
import { replicateRecords } from '../shared/engine/batch.js';
import { replicateWork } from '../shared/engine/replicate.js';
import { LocalObjectStore } from '../shared/local/LocalObjectStore.js';
import { SqliteStateStore } from '../shared/local/SqliteStateStore.js';
import { MemoryWorkQueue } from '../shared/memory/MemoryWorkQueue.js';
import type { AssetSource, ReceivedWork, WorkQueue } from '../shared/types.js';
import { bodyOf, bytesOf, manualClock, md5Of, sampleAsset, sleep } from './contracts/support.js';

const folders: string[] = [];
afterEach(async () => {
  await Promise.all(folders.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** Waits (without a deadline of its own: the test's timeout is the limit) until `ready` holds. */
async function until(ready: () => boolean): Promise<void> {
  while (!ready()) await sleep(10);
}

/** A queue on `clock` that counts heartbeat extensions. */
function countingQueue(clock: { nowMs: () => number }, visibilitySeconds: number) {
  const memory = new MemoryWorkQueue({ visibilityTimeoutSeconds: visibilitySeconds, now: clock.nowMs });
  const counts = { beats: 0, byMessage: new Map<string, number>() };
  const queue: WorkQueue = {
    sendBatch: (items) => memory.sendBatch(items),
    receive: (max, wait) => memory.receive(max, wait),
    ack: (work) => memory.ack(work),
    retryLater: (work, delay) => memory.retryLater(work, delay),
    deadLetter: (work, reason) => memory.deadLetter(work, reason),
    extendVisibility: (work, seconds) => {
      counts.beats += 1;
      counts.byMessage.set(work.messageId, (counts.byMessage.get(work.messageId) ?? 0) + 1);
      return memory.extendVisibility(work, seconds);
    },
  };
  return { queue, counts };
}

/** The record Lambda's event source would deliver for a received message. */
function recordOf(work: ReceivedWork): SQSRecord {
  return {
    messageId: work.messageId,
    receiptHandle: work.receiptHandle,
    body: JSON.stringify(work.item),
    attributes: {
      ApproximateReceiveCount: String(work.receiveCount),
      SentTimestamp: '0',
      SenderId: 'test',
      ApproximateFirstReceiveTimestamp: '0',
    },
    messageAttributes: {},
    md5OfBody: md5Of(JSON.stringify(work.item)),
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:work',
    awsRegion: 'us-east-1',
  };
}

describe('a copy in progress', () => {
  it('keeps the messages of its batch that wait their turn hidden while the invocation lives', async () => {
    const clock = manualClock();
    const dir = mkdtempSync(join(tmpdir(), 'heartbeat-batch-'));
    folders.push(dir);
    const state = new SqliteStateStore(dir, { now: clock.now });
    const store = new LocalObjectStore(join(dir, 'store'));
    const { queue, counts } = countingQueue(clock, 0.9);
    const data = bytesOf(50_000, 9);
    const assets = [0, 1, 2].map((i) =>
      sampleAsset(`batch/clip-${i}`, { bytes: data.length, etag: md5Of(data), format: 'mp4' }),
    );
    const first = new PassThrough();
    const source: AssetSource = {
      listPage: async () => ({ assets: [] }),
      open: async (asset) => ({
        stream: asset.publicId === 'batch/clip-0' ? first : bodyOf(data),
        length: data.length,
      }),
    };
    await queue.sendBatch(assets.map((asset) => ({ runId: 'run-1', asset })));
    const works = await queue.receive(10);

    const handling = replicateRecords(
      { source, store, state, queue, maxReceives: 3, inFlightSeconds: 0.9 },
      works.map(recordOf),
      { deadline: Date.now() + 60_000, concurrency: 1 },
    );
    // The copy in progress beats for its own message, the batch for those waiting: time moves only
    // once both have beaten since it last moved.
    const ids = works.map((work) => work.messageId);
    const beatsOf = (id: string | undefined) => counts.byMessage.get(id ?? '') ?? 0;
    for (let step = 0; step < 6; step++) {
      const seen = [beatsOf(ids[0]), beatsOf(ids[2])];
      await until(() => beatsOf(ids[0]) > (seen[0] ?? 0) && beatsOf(ids[2]) > (seen[1] ?? 0));
      clock.advance(600);
    }
    const redelivered = await queue.receive(10);
    first.end(data);
    const summary = await handling;

    expect(redelivered).toEqual([]);
    expect(summary).toMatchObject({ replicated: 3, batchItemFailures: [] });
    state.close();
    store.close();
  });

  it('keeps its message hidden and its asset leased for as long as it runs, then stops beating', async () => {
    const clock = manualClock();
    const dir = mkdtempSync(join(tmpdir(), 'heartbeat-'));
    folders.push(dir);
    const state = new SqliteStateStore(dir, { now: clock.now });
    const store = new LocalObjectStore(join(dir, 'store'));
    const memory = new MemoryWorkQueue({ visibilityTimeoutSeconds: 0.9, now: clock.nowMs });
    let beats = 0;
    const queue: WorkQueue = {
      sendBatch: (items) => memory.sendBatch(items),
      receive: (max, wait) => memory.receive(max, wait),
      ack: (work) => memory.ack(work),
      retryLater: (work, delay) => memory.retryLater(work, delay),
      deadLetter: (work, reason) => memory.deadLetter(work, reason),
      extendVisibility: (work, seconds) => {
        beats += 1;
        return memory.extendVisibility(work, seconds);
      },
    };
    const data = bytesOf(300_000, 5);
    const asset = sampleAsset('slow/clip', { bytes: data.length, etag: md5Of(data), format: 'mp4' });
    const body = new PassThrough();
    const source: AssetSource = {
      listPage: async () => ({ assets: [] }),
      open: async () => ({ stream: body, length: data.length }),
    };
    await queue.sendBatch([{ runId: 'run-1', asset }]);
    const [work] = await queue.receive(1);

    const copying = replicateWork(
      { source, store, state, queue, maxReceives: 3, inFlightSeconds: 0.9 },
      work as ReceivedWork,
    );
    // Four times the in-flight time passes while the copy runs, each step after a heartbeat.
    for (let step = 0; step < 6; step++) {
      const seen = beats;
      await until(() => beats > seen);
      clock.advance(600);
    }
    const redelivered = await queue.receive(10);
    const otherWorker = await state.acquireLease(asset, asset.version, 'other-worker', 900);
    body.end(data);
    const result = await copying;
    const beatsAtEnd = beats;
    await sleep(700);

    expect(redelivered).toEqual([]);
    expect(otherWorker).toBe('busy');
    expect(result).toMatchObject({ outcome: 'replicated', bytes: data.length });
    expect(beats).toBe(beatsAtEnd);
    state.close();
    store.close();
  });
});

import { describe, expect, it } from 'vitest';
import { MemoryWorkQueue } from '../shared/memory/MemoryWorkQueue.js';
import type { ReceivedWork } from '../shared/types.js';
import { workItems } from './contracts/support.js';
import { workQueueContract } from './contracts/workQueueContract.js';

workQueueContract('MemoryWorkQueue', async () => {
  let now = 1_000_000;
  const queue = new MemoryWorkQueue({ visibilityTimeoutSeconds: 30, now: () => now });
  return {
    queue,
    visibilityTimeoutSeconds: 30,
    passTime: async (seconds) => {
      now += seconds * 1000;
    },
    readDeadLetters: async () => queue.deadLetters.map(({ item, reason }) => ({ item, reason })),
  };
});

describe('MemoryWorkQueue', () => {
  function clock() {
    let now = 1_000_000;
    return { now: () => now, advance: (ms: number) => (now += ms) };
  }

  it('a message received more often than maxReceiveCount moves to the dead letters with a reason', async () => {
    const time = clock();
    const queue = new MemoryWorkQueue({ visibilityTimeoutSeconds: 10, maxReceiveCount: 2, now: time.now });
    await queue.sendBatch(workItems(1));

    const first = await queue.receive(1);
    time.advance(10_000);
    const second = await queue.receive(1);
    time.advance(10_000);
    const third = await queue.receive(1);

    expect([first.length, second.length, third.length]).toEqual([1, 1, 0]);
    expect(queue.deadLetters).toHaveLength(1);
    expect(queue.deadLetters[0]).toMatchObject({
      receiveCount: 2,
      reason: expect.stringContaining('2 times'),
    });
    expect(queue.size).toBe(0);
  });

  it('an outdated receipt handle deletes nothing, as on SQS', async () => {
    const time = clock();
    const queue = new MemoryWorkQueue({ visibilityTimeoutSeconds: 10, now: time.now });
    await queue.sendBatch(workItems(1));
    const [stale] = await queue.receive(1);
    time.advance(10_000);
    const [fresh] = await queue.receive(1);

    await queue.ack(stale as ReceivedWork);

    expect(queue.size).toBe(1);
    await queue.ack(fresh as ReceivedWork);
    expect(queue.size).toBe(0);
  });

  it('dead letters record the receive count and when the message was given up', async () => {
    const time = clock();
    const queue = new MemoryWorkQueue({ now: time.now });
    await queue.sendBatch(workItems(1));
    const [work] = await queue.receive(1);

    await queue.deadLetter(work as ReceivedWork, 'restricted asset type');

    expect(queue.deadLetters).toEqual([
      {
        item: work?.item,
        reason: 'restricted asset type',
        receiveCount: 1,
        failedAt: new Date(1_000_000).toISOString(),
        messageId: work?.messageId,
      },
    ]);
  });

  it('receive waits for a message that arrives during the wait', async () => {
    const queue = new MemoryWorkQueue();
    setTimeout(() => void queue.sendBatch(workItems(1)), 50);

    const received = await queue.receive(1, 2);

    expect(received).toHaveLength(1);
  });
});

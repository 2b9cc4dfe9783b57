import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ReceivedWork, WorkItem, WorkQueue } from '../../shared/types.js';
import { sampleAsset, workItems } from './support.js';

export interface WorkQueueHarness {
  queue: WorkQueue;
  cleanup?: () => Promise<void>;
  /** How long a received message stays hidden. */
  visibilityTimeoutSeconds: number;
  /**
   * Lets `seconds` pass for the queue: a queue on an injected clock moves it; a server with its
   * own clock (moto) is waited for, which only ever makes more than `seconds` pass.
   */
  passTime: (seconds: number) => Promise<void>;
  /** What deadLetter kept: the items and their reasons. */
  readDeadLetters: () => Promise<Array<{ item: WorkItem; reason: string }>>;
}

/** Receives until `count` messages arrived or `timeoutMs` passed (a bound for a broken queue, generous for a loaded box). */
async function receiveUntil(queue: WorkQueue, count: number, timeoutMs = 30_000): Promise<ReceivedWork[]> {
  const received: ReceivedWork[] = [];
  const deadline = Date.now() + timeoutMs;
  while (received.length < count && Date.now() < deadline) {
    received.push(...(await queue.receive(Math.min(10, count - received.length), 1)));
  }
  return received;
}

/**
 * What every WorkQueue must do (rclone's fstests idea): each test gets a fresh, empty queue from
 * `make` and gives it back through `cleanup`.
 */
export function workQueueContract(name: string, make: () => Promise<WorkQueueHarness>): void {
  describe(`WorkQueue contract: ${name}`, () => {
    let harness: WorkQueueHarness;
    let queue: WorkQueue;
    const waitForVisibility = () => harness.passTime(harness.visibilityTimeoutSeconds + 0.3);
    beforeEach(async () => {
      harness = await make();
      queue = harness.queue;
    });
    afterEach(async () => {
      await harness.cleanup?.();
    });

    it('every item of a 25-item batch is delivered once, intact', async () => {
      const items = workItems(25);

      await queue.sendBatch(items);
      const received: ReceivedWork[] = [];
      for (const work of await receiveUntil(queue, 25)) {
        received.push(work);
        await queue.ack(work);
      }

      expect(received).toHaveLength(25);
      expect(new Set(received.map((w) => w.messageId)).size).toBe(25);
      expect(
        received.map((w) => w.item).sort((a, b) => a.asset.publicId.localeCompare(b.asset.publicId)),
      ).toEqual([...items].sort((a, b) => a.asset.publicId.localeCompare(b.asset.publicId)));
      expect(received.every((w) => w.receiveCount === 1)).toBe(true);
    });

    it('a work item keeps every field through the queue', async () => {
      const item: WorkItem = {
        runId: '2024-05-01T00-00-00-000Z-abcdef',
        asset: sampleAsset('folder/東京 café #1', {
          resourceType: 'video',
          deliveryType: 'authenticated',
          format: 'mp4',
          bytes: 5_000_000_000,
          tags: ['a', 'ü'],
          context: { caption: 'line\nbreak "quoted"' },
          metadata: { rating: 5, nested: { ok: true } },
          secureUrl: 'https://res.cloudinary.com/demo/video/authenticated/v1/x.mp4',
        }),
      };

      await queue.sendBatch([item]);
      const [work] = await receiveUntil(queue, 1);

      expect(work?.item).toEqual(item);
    });

    it('sending an empty batch sends nothing', async () => {
      await queue.sendBatch([]);

      await expect(queue.receive(10, 0)).resolves.toEqual([]);
    });

    it('receive returns no more messages than asked', async () => {
      await queue.sendBatch(workItems(5));

      const received = await queue.receive(3, 1);

      expect(received.length).toBeGreaterThan(0);
      expect(received.length).toBeLessThanOrEqual(3);
    });

    it('a received message is hidden from other consumers until it is acknowledged or times out', async () => {
      await queue.sendBatch(workItems(1));
      const first = await receiveUntil(queue, 1);

      const second = await queue.receive(10, 0);

      expect(first).toHaveLength(1);
      expect(second).toEqual([]);
    });

    it('after the visibility timeout an unacknowledged message comes back with a higher receive count, an acknowledged one never', async () => {
      await queue.sendBatch(workItems(2));
      const [done, dropped] = await receiveUntil(queue, 2);
      await queue.ack(done as ReceivedWork);

      await waitForVisibility();
      const again = await queue.receive(10, 1);

      expect(again).toHaveLength(1);
      expect(again[0]?.messageId).toBe(dropped?.messageId);
      expect(again[0]?.item).toEqual(dropped?.item);
      expect(again[0]?.receiveCount).toBe(2);
    });

    it('a heartbeat keeps a message in progress hidden past its visibility timeout', async () => {
      await queue.sendBatch(workItems(1));
      const [work] = await receiveUntil(queue, 1);

      await queue.extendVisibility(work as ReceivedWork, 60);
      await waitForVisibility();
      const again = await queue.receive(10, 0);

      expect(again).toEqual([]);
    });

    it('a message whose heartbeat stops comes back soon after its last extension, with a higher receive count', async () => {
      await queue.sendBatch(workItems(1));
      const [work] = await receiveUntil(queue, 1);

      await queue.extendVisibility(work as ReceivedWork, 1);
      await harness.passTime(1.3);
      const [again] = await receiveUntil(queue, 1);

      expect(again?.messageId).toBe(work?.messageId);
      expect(again?.receiveCount).toBe(2);
    });

    it('retryLater brings a message back after its delay, and not before', async () => {
      await queue.sendBatch(workItems(1));
      const [first] = await receiveUntil(queue, 1);

      await queue.retryLater(first as ReceivedWork, 0);
      const [second] = await receiveUntil(queue, 1);
      await queue.retryLater(second as ReceivedWork, 60);
      const third = await queue.receive(10, 0);

      expect(second?.messageId).toBe(first?.messageId);
      expect(second?.receiveCount).toBe(2);
      expect(third).toEqual([]);
    });

    it('deadLetter takes a message off the queue for good and keeps the reason', async () => {
      await queue.sendBatch(workItems(1));
      const [work] = await receiveUntil(queue, 1);

      await queue.deadLetter(work as ReceivedWork, 'MD5 mismatch after 3 tries');
      await waitForVisibility();
      const again = await queue.receive(10, 0);

      expect(again).toEqual([]);
      expect(await harness.readDeadLetters()).toEqual([
        { item: work?.item, reason: 'MD5 mismatch after 3 tries' },
      ]);
    });
  });
}

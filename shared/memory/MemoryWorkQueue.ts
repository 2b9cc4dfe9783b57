import { randomUUID } from 'node:crypto';
import type { ReceivedWork, WorkItem, WorkQueue } from '../types.js';

/** A message given up on: what it carried and why. */
export interface DeadLetter {
  item: WorkItem;
  reason: string;
  receiveCount: number;
  failedAt: string;
  messageId: string;
}

export interface MemoryWorkQueueOptions {
  /** How long a received message stays invisible unless acked (default 30 s; fractions allowed). */
  visibilityTimeoutSeconds?: number;
  /** Like a redrive policy: a message received more often than this goes to `deadLetters`. */
  maxReceiveCount?: number;
  /** Clock in epoch ms (tests). */
  now?: () => number;
}

interface StoredMessage {
  messageId: string;
  /** JSON, as on a real queue: receivers never share objects with the sender. */
  body: string;
  visibleAt: number;
  receiveCount: number;
  receiptHandle?: string;
}

const POLL_MS = 10;
const MAX_RECEIVE = 10;

/**
 * WorkQueue in this process with SQS's semantics: a received message is invisible until acked or
 * until its visibility timeout ends, receive counts grow with every delivery, retryLater sets when
 * it comes back, and deadLetter moves it to the inspectable `deadLetters` list.
 */
export class MemoryWorkQueue implements WorkQueue {
  readonly deadLetters: DeadLetter[] = [];
  private readonly messages: StoredMessage[] = [];
  private readonly visibilityMs: number;
  private readonly maxReceiveCount?: number;
  private readonly now: () => number;

  constructor(options: MemoryWorkQueueOptions = {}) {
    this.visibilityMs = (options.visibilityTimeoutSeconds ?? 30) * 1000;
    this.maxReceiveCount = options.maxReceiveCount;
    this.now = options.now ?? Date.now;
  }

  /** Messages on the queue, visible or in flight. */
  get size(): number {
    return this.messages.length;
  }

  async sendBatch(items: WorkItem[]): Promise<void> {
    const now = this.now();
    for (const item of items) {
      this.messages.push({
        messageId: randomUUID(),
        body: JSON.stringify(item),
        visibleAt: now,
        receiveCount: 0,
      });
    }
  }

  async receive(max: number, waitSeconds = 0): Promise<ReceivedWork[]> {
    // The long-poll wait is real time (it only decides how long to keep looking); visibility uses the clock.
    const deadline = Date.now() + Math.max(0, waitSeconds) * 1000;
    for (;;) {
      const received = this.take(Math.min(MAX_RECEIVE, Math.max(1, Math.floor(max))));
      if (received.length > 0 || Date.now() >= deadline) return received;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  async ack(work: ReceivedWork): Promise<void> {
    // As on SQS, an outdated receipt handle (the message was received again since) deletes nothing.
    const index = this.messages.findIndex((m) => m.receiptHandle === work.receiptHandle);
    if (index >= 0) this.messages.splice(index, 1);
  }

  async retryLater(work: ReceivedWork, delaySeconds: number): Promise<void> {
    const message = this.messages.find((m) => m.receiptHandle === work.receiptHandle);
    if (message) message.visibleAt = this.now() + Math.max(0, delaySeconds) * 1000;
  }

  async extendVisibility(work: ReceivedWork, seconds: number): Promise<void> {
    // As on SQS, only the latest receipt counts: a stale holder cannot hide a redelivered message.
    const message = this.messages.find((m) => m.receiptHandle === work.receiptHandle);
    if (message) message.visibleAt = this.now() + Math.max(0, seconds) * 1000;
  }

  async deadLetter(work: ReceivedWork, reason: string): Promise<void> {
    const index = this.messages.findIndex((m) => m.receiptHandle === work.receiptHandle);
    const message = index >= 0 ? this.messages.splice(index, 1)[0] : undefined;
    this.deadLetters.push({
      item: message ? (JSON.parse(message.body) as WorkItem) : work.item,
      reason,
      receiveCount: work.receiveCount,
      failedAt: new Date(this.now()).toISOString(),
      messageId: work.messageId,
    });
  }

  private take(max: number): ReceivedWork[] {
    const now = this.now();
    const received: ReceivedWork[] = [];
    // In place, stopping at `max`: messages in flight sit at the front, so a receive costs what is
    // in flight, not the length of the queue.
    for (let i = 0; i < this.messages.length && received.length < max; i += 1) {
      const message = this.messages[i] as StoredMessage;
      if (message.visibleAt > now) continue;
      if (this.maxReceiveCount !== undefined && message.receiveCount >= this.maxReceiveCount) {
        this.messages.splice(i, 1);
        i -= 1;
        this.deadLetters.push({
          item: JSON.parse(message.body) as WorkItem,
          reason: `received ${message.receiveCount} times without being acknowledged`,
          receiveCount: message.receiveCount,
          failedAt: new Date(now).toISOString(),
          messageId: message.messageId,
        });
        continue;
      }
      message.receiveCount += 1;
      message.visibleAt = now + this.visibilityMs;
      message.receiptHandle = randomUUID();
      received.push({
        item: JSON.parse(message.body) as WorkItem,
        receiptHandle: message.receiptHandle,
        receiveCount: message.receiveCount,
        messageId: message.messageId,
      });
    }
    return received;
  }
}

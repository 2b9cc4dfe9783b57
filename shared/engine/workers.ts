import type { StateStore, WorkerSwitch, WorkQueue } from '../types.js';

/**
 * The queue every caller sends through: whatever enqueues (a run, a webhook) starts the workers,
 * after the send, so a stop that raced it either saw the message or is undone by this start.
 */
export function wakingQueue(queue: WorkQueue, workers: WorkerSwitch): WorkQueue {
  return {
    sendBatch: async (items) => {
      await queue.sendBatch(items);
      if (items.length > 0) await workers.start();
    },
    receive: (max, waitSeconds) => queue.receive(max, waitSeconds),
    ack: (work) => queue.ack(work),
    retryLater: (work, delaySeconds) => queue.retryLater(work, delaySeconds),
    extendVisibility: (work, seconds) => queue.extendVisibility(work, seconds),
    deadLetter: (work, reason) => queue.deadLetter(work, reason),
  };
}

/** What a settle check found: stopped, still copying (check again later), or superseded by a newer run. */
export type SettleOutcome = 'stopped' | 'copying' | 'superseded';

/**
 * Stops the workers once `runId`'s work is done: its listing completed, every message it sent
 * settled, and the queue holds nothing else (the switch checks). A newer run takes over the checks.
 */
export async function settleWorkers(
  deps: { state: StateStore; workers: WorkerSwitch },
  runId: string,
): Promise<SettleOutcome> {
  const latest = await deps.state.latestRun();
  if (latest && latest.runId !== runId) return 'superseded';
  const run = latest ?? (await deps.state.getRun(runId));
  if (!run || run.phase !== 'completed') return 'copying';
  if ((run.counters.settled ?? 0) < run.counters.enqueued) return 'copying';
  return (await deps.workers.stopIfIdle()) ? 'stopped' : 'copying';
}

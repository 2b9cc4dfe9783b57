import type { SQSBatchItemFailure, SQSRecord } from 'aws-lambda';
import { workFromSqsRecord } from '../aws/SqsWorkQueue.js';
import { mapLimit } from '../concurrency.js';
import { WEBHOOK_RUN_ID } from '../constants.js';
import { describeError, dispositionOf } from '../errors.js';
import type { ReceivedWork } from '../types.js';
import { heartbeatIntervalMs, startHeartbeat } from './heartbeat.js';
import { addRunCounters, replicateWork, type ReplicateDeps, type ReplicateResult } from './replicate.js';

/** How long a lease outlives the invocation's deadline. */
const LEASE_MARGIN_MS = 60_000;

export interface BatchSummary {
  replicated: number;
  skipped: number;
  gone: number;
  deadLettered: number;
  /** Copies stopped at the deadline and passed on to a next invocation with a new message. */
  handedOver: number;
  bytes: number;
  batchItemFailures: SQSBatchItemFailure[];
}

/**
 * Handles one SQS batch the way the Lambda event source expects: every record is copied (a few at
 * a time), retryable failures are reported as batch item failures with a backed-off visibility,
 * and the rest are acknowledged. Work still running at the deadline is aborted and reported.
 * A fatal error (credentials, missing bucket or table) fails the whole batch.
 */
export async function replicateRecords(
  deps: ReplicateDeps,
  records: SQSRecord[],
  options: { deadline: number; concurrency?: number; stop?: AbortSignal },
): Promise<BatchSummary> {
  const summary: BatchSummary = {
    replicated: 0,
    skipped: 0,
    gone: 0,
    deadLettered: 0,
    handedOver: 0,
    bytes: 0,
    batchItemFailures: [],
  };
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new Error('the invocation reached its deadline')),
    Math.max(0, options.deadline - Date.now()),
  );
  // The deadline brought forward (the bench's and tests' simulated invocation limit).
  options.stop?.addEventListener('abort', () => controller.abort(options.stop?.reason), { once: true });
  const fail = (messageId: string) => summary.batchItemFailures.push({ itemIdentifier: messageId });
  let fatal: unknown;
  // The work done is credited to the run doing it; each message settles the run that sent it.
  const done = { replicated: 0, bytes: 0, failed: 0 };
  const settledPerRun = new Map<string, number>();
  // Work a webhook enqueued belongs to no run: there is no run record to settle.
  const settle = (runId: string) =>
    runId === WEBHOOK_RUN_ID ? settledPerRun : settledPerRun.set(runId, (settledPerRun.get(runId) ?? 0) + 1);
  const works = new Map<string, ReceivedWork>();
  for (const record of records) {
    try {
      works.set(record.messageId, workFromSqsRecord(record));
    } catch (error) {
      // Left to the queue's redrive policy, which moves it to the DLQ after its receives.
      deps.log?.error('malformed work message', {
        messageId: record.messageId,
        error: describeError(error),
      });
    }
  }
  // Messages waiting their turn stay hidden only while this invocation lives (the copies keep their own).
  const waiting = new Set(works.values());
  const inFlight = deps.inFlightSeconds;
  const keepWaitingHidden = async () => {
    // All at once: a queue may send them as one batch request.
    await Promise.all(
      [...waiting].map((work) => deps.queue.extendVisibility(work, inFlight ?? 0).catch(() => undefined)),
    );
  };
  const heartbeat =
    inFlight === undefined ? undefined : startHeartbeat(heartbeatIntervalMs(inFlight), keepWaitingHidden);
  try {
    if (inFlight !== undefined) await keepWaitingHidden();
    await mapLimit(records, options.concurrency ?? 4, async (record) => {
      const work = works.get(record.messageId);
      if (work) waiting.delete(work);
      if (fatal !== undefined || !work) return fail(record.messageId);
      if (controller.signal.aborted) {
        // Never started before the deadline: visible again now, not after the visibility timeout.
        await releaseUnstarted(deps, work);
        return fail(record.messageId);
      }
      let result: ReplicateResult;
      try {
        // The lease outlives this invocation only by a margin, so a crashed worker blocks nobody for long.
        const leaseMs = Math.max(0, options.deadline - Date.now()) + LEASE_MARGIN_MS;
        result = await replicateWork(deps, work, { signal: controller.signal, leaseMs });
      } catch (error) {
        if (dispositionOf(error) === 'fatal') fatal ??= error;
        return fail(record.messageId);
      }
      switch (result.outcome) {
        case 'replicated':
          summary.replicated += 1;
          summary.bytes += result.bytes;
          done.replicated += 1;
          done.bytes += result.bytes;
          return settle(work.item.runId);
        case 'skipped':
          summary.skipped += 1;
          return settle(work.item.runId);
        case 'gone':
          summary.gone += 1;
          return settle(work.item.runId);
        case 'dead-lettered':
          summary.deadLettered += 1;
          done.failed += 1;
          return settle(work.item.runId);
        case 'handed-over':
          // Acknowledged: the new message carries the copy on, from its checkpoint.
          summary.handedOver += 1;
          return;
        case 'retry':
          await deps.queue.retryLater(work, result.delaySeconds).catch(() => undefined);
          return fail(record.messageId);
      }
    });
  } finally {
    clearTimeout(timer);
    await heartbeat?.stop();
    await creditRuns(deps, done, settledPerRun);
  }
  if (fatal !== undefined) throw fatal;
  return summary;
}

/**
 * Credits copies to the latest run, the one doing the work (a message may come from an earlier,
 * interrupted run), and settles each message's own run.
 */
async function creditRuns(
  deps: ReplicateDeps,
  done: { replicated: number; bytes: number; failed: number },
  settledPerRun: Map<string, number>,
): Promise<void> {
  const credits = new Map<
    string,
    { replicated?: number; bytes?: number; failed?: number; settled?: number }
  >();
  for (const [runId, settled] of settledPerRun) credits.set(runId, { settled });
  if (done.replicated > 0 || done.failed > 0) {
    const latest = await deps.state.latestRun().catch(() => undefined);
    const runId = latest?.runId ?? [...settledPerRun.keys()].sort().at(-1);
    if (runId !== undefined) credits.set(runId, { ...credits.get(runId), ...done });
  }
  await Promise.all([...credits].map(([runId, delta]) => addRunCounters(deps, runId, delta)));
}

/** Makes a message this invocation never started visible again at once (best effort). */
async function releaseUnstarted(deps: ReplicateDeps, work: ReceivedWork): Promise<void> {
  try {
    await deps.queue.retryLater(work, 0);
  } catch (error) {
    // It still comes back once its visibility runs out.
    deps.log?.warn('could not release an unstarted message', {
      messageId: work.messageId,
      error: describeError(error),
    });
  }
}

import type { SQSBatchItemFailure, SQSRecord } from 'aws-lambda';
import { workFromSqsRecord } from '../aws/SqsWorkQueue.js';
import { mapLimit } from '../concurrency.js';
import { describeError, dispositionOf } from '../errors.js';
import type { ReceivedWork } from '../types.js';
import { addRunCounters, replicateWork, type ReplicateDeps, type ReplicateResult } from './replicate.js';

/** How long a lease outlives the invocation's deadline. */
const LEASE_MARGIN_MS = 60_000;

export interface BatchSummary {
  replicated: number;
  skipped: number;
  gone: number;
  deadLettered: number;
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
  options: { deadline: number; concurrency?: number },
): Promise<BatchSummary> {
  const summary: BatchSummary = {
    replicated: 0,
    skipped: 0,
    gone: 0,
    deadLettered: 0,
    bytes: 0,
    batchItemFailures: [],
  };
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new Error('the invocation reached its deadline')),
    Math.max(0, options.deadline - Date.now()),
  );
  const fail = (messageId: string) => summary.batchItemFailures.push({ itemIdentifier: messageId });
  let fatal: unknown;
  const perRun = new Map<string, { replicated: number; bytes: number; failed: number }>();
  const count = (runId: string, replicated: number, bytes: number, failed: number) => {
    const c = perRun.get(runId) ?? { replicated: 0, bytes: 0, failed: 0 };
    perRun.set(runId, {
      replicated: c.replicated + replicated,
      bytes: c.bytes + bytes,
      failed: c.failed + failed,
    });
  };
  try {
    await mapLimit(records, options.concurrency ?? 4, async (record) => {
      if (fatal !== undefined) return fail(record.messageId);
      if (controller.signal.aborted) {
        // Never started before the deadline: visible again now, not after the visibility timeout.
        await releaseUnstarted(deps, record);
        return fail(record.messageId);
      }
      let work: ReceivedWork;
      try {
        work = workFromSqsRecord(record);
      } catch (error) {
        // Left to the queue's redrive policy, which moves it to the DLQ after its receives.
        deps.log?.error('malformed work message', {
          messageId: record.messageId,
          error: describeError(error),
        });
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
          count(work.item.runId, 1, result.bytes, 0);
          return;
        case 'skipped':
          summary.skipped += 1;
          return;
        case 'gone':
          summary.gone += 1;
          return;
        case 'dead-lettered':
          summary.deadLettered += 1;
          count(work.item.runId, 0, 0, 1);
          return;
        case 'retry':
          await deps.queue.retryLater(work, result.delaySeconds).catch(() => undefined);
          return fail(record.messageId);
      }
    });
  } finally {
    clearTimeout(timer);
    await Promise.all([...perRun].map(([runId, delta]) => addRunCounters(deps, runId, delta)));
  }
  if (fatal !== undefined) throw fatal;
  return summary;
}

/** Makes a record this invocation never started visible again at once (best effort). */
async function releaseUnstarted(deps: ReplicateDeps, record: SQSRecord): Promise<void> {
  try {
    await deps.queue.retryLater(workFromSqsRecord(record), 0);
  } catch (error) {
    // It still comes back after the visibility timeout.
    deps.log?.warn('could not release an unstarted message', {
      messageId: record.messageId,
      error: describeError(error),
    });
  }
}

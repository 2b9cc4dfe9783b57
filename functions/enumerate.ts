import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import {
  cachedAwsEngine,
  ConfigError,
  continuationFromEnv,
  describeError,
  emptyCounters,
  enumerate,
  scheduleContinuation,
  scheduleSettleCheck,
  settleWorkers,
  type EnumerateOutcome,
  type SettleOutcome,
} from '../shared/index.js';
import { engineLog, logger, metrics, MetricUnit, observed } from './observability.js';

/**
 * `start` (the daily schedule, or a run started by hand), `continue` a paused run, or `settle`:
 * stop the workers once a completed run's copies are done.
 */
export interface EnumerateEvent {
  action?: 'start' | 'continue' | 'settle';
  runId?: string;
  /** With `start`: retry quarantined assets too (`{"action":"start","redrive":true}`). */
  redrive?: boolean;
}

export interface EnumerateResult {
  runId: string;
  status: EnumerateOutcome['status'];
  resumeAt?: string;
  counters: EnumerateOutcome['run']['counters'];
  /** After a completed listing: whether the workers stopped or are still copying. */
  workers?: SettleOutcome;
}

/** Between two checks of whether a run's copies are done (the workers poll until then). */
export const SETTLE_CHECK_MS = 10 * 60_000;

/** What happens when a run pauses; on Lambda a one-time schedule continues it. */
export interface EnumerateHooks {
  onPaused(outcome: Extract<EnumerateOutcome, { status: 'paused' }>, context: Context): Promise<void>;
  /** A completed run still has copies going: check again later (Lambda: a one-time schedule). */
  onCopying?(runId: string, context: Context): Promise<void>;
  /** The workers' event source must be switchable (on Lambda: it is created off). */
  workersRequired?: boolean;
  now?: () => Date;
}

export const scheduleOnLambda: EnumerateHooks = {
  workersRequired: true,
  async onPaused(outcome, context) {
    const target = continuationFromEnv(process.env, context.invokedFunctionArn);
    if (!target) {
      throw new Error(
        'the run paused but CONTINUATION_GROUP / CONTINUATION_ROLE_ARN are not set to continue it',
      );
    }
    const name = await scheduleContinuation(target, outcome.run.runId, outcome.resumeAt);
    logger.info('continuation scheduled', {
      runId: outcome.run.runId,
      schedule: name,
      reason: outcome.reason,
    });
  },
  async onCopying(runId, context) {
    const target = continuationFromEnv(process.env, context.invokedFunctionArn);
    // Without a schedule group the workers keep polling until the next run's check.
    if (!target) return;
    const name = await scheduleSettleCheck(target, runId, new Date(Date.now() + SETTLE_CHECK_MS));
    logger.info('settle check scheduled', { runId, schedule: name });
  },
};

/** Stops the workers when the run's copies are done; otherwise has the hooks check again later. */
async function settle(
  runId: string,
  context: Context,
  hooks: EnumerateHooks,
): Promise<SettleOutcome | undefined> {
  const engine = await cachedAwsEngine();
  // No event source to switch (a workstation run drains the queue itself): the listing is the run.
  if (!engine.workers) {
    runFinished();
    return undefined;
  }
  const outcome = await settleWorkers({ state: engine.state, workers: engine.workers }, runId);
  if (outcome === 'copying') await hooks.onCopying?.(runId, context);
  if (outcome === 'stopped') runFinished();
  return outcome;
}

/** A run counts once listed and every copy it queued settled: the stale-run alarm reads this. */
function runFinished(): void {
  metrics.addMetric('RunsCompleted', MetricUnit.Count, 1);
}

export async function enumerateHandler(
  event: EnumerateEvent,
  context: Context,
  hooks: EnumerateHooks = scheduleOnLambda,
): Promise<EnumerateResult> {
  const action = event?.action ?? 'start';
  if (action !== 'start' && action !== 'continue' && action !== 'settle') {
    throw new Error(
      `unknown action "${String(action)}": use {"action":"start"} or {"action":"continue","runId":"…"}`,
    );
  }
  if ((action === 'continue' || action === 'settle') && !event.runId)
    throw new Error(`{"action":"${action}"} needs the runId`);
  const engine = await cachedAwsEngine();
  if (hooks.workersRequired && !engine.workers) {
    throw new ConfigError(
      'WORKER_MAPPING_ID is not set: the enumerator switches the replicate event source on with it. Redeploy the stack.',
    );
  }
  if (action === 'settle') {
    const runId = event.runId ?? '';
    const workers = await settle(runId, context, hooks);
    const run = await engine.state.getRun(runId);
    return {
      runId,
      status: 'completed',
      counters: run?.counters ?? emptyCounters(),
      ...(workers ? { workers } : {}),
    };
  }
  let lastRemaining: number | undefined;
  const outcome = await enumerate(
    {
      source: engine.source,
      state: engine.state,
      queue: engine.queue,
      workers: engine.workers,
      store: engine.store,
      settings: engine.settings,
      log: engineLog,
      now: hooks.now,
      onPage: (run, _listing, page) => {
        // A new run's id is known from its first page: later lines carry it as the correlation id.
        logger.setCorrelationId(run.runId);
        metrics.addMetric('AssetsListed', MetricUnit.Count, page.listed);
        metrics.addMetric('AssetsEnqueued', MetricUnit.Count, page.enqueued);
        lastRemaining = engine.source.rateLimit?.remaining;
      },
    },
    {
      runId: action === 'continue' ? event.runId : undefined,
      redrive: action === 'start' && event.redrive === true,
      deadline: Date.now() + context.getRemainingTimeInMillis(),
    },
  );
  if (lastRemaining !== undefined) metrics.addMetric('AdminCallsRemaining', MetricUnit.Count, lastRemaining);
  let workers: SettleOutcome | undefined;
  if (outcome.status === 'completed') {
    metrics.addMetric('AssetsDeletedAtSource', MetricUnit.Count, outcome.run.counters.deleted);
    workers = await settle(outcome.run.runId, context, hooks);
  } else {
    await hooks.onPaused(outcome, context);
  }
  return {
    runId: outcome.run.runId,
    status: outcome.status,
    resumeAt: outcome.status === 'paused' ? outcome.resumeAt.toISOString() : undefined,
    counters: outcome.run.counters,
    ...(workers ? { workers } : {}),
  };
}

export const handler = middy<EnumerateEvent, EnumerateResult, Error, Context>()
  .use(observed<EnumerateEvent, EnumerateResult>((event) => event?.runId))
  // Error middlewares run last-registered first: this one logs before metrics are published. Lambda's
  // own Errors metric counts the failure (free; a custom metric for it would be billed).
  .onError((request) => {
    logger.error('enumerate failed', { error: describeError(request.error) });
  })
  .handler((event, context) => enumerateHandler(event, context));

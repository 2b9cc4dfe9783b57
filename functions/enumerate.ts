import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import {
  cachedAwsEngine,
  continuationFromEnv,
  describeError,
  enumerate,
  scheduleContinuation,
  type EnumerateOutcome,
} from '../shared/index.js';
import { engineLog, logger, metrics, MetricUnit, observed } from './observability.js';

/** `start` (the daily schedule, or a run started by hand) or `continue` a paused run. */
export interface EnumerateEvent {
  action?: 'start' | 'continue';
  runId?: string;
  /** With `start`: retry quarantined assets too (`{"action":"start","redrive":true}`). */
  redrive?: boolean;
}

export interface EnumerateResult {
  runId: string;
  status: EnumerateOutcome['status'];
  resumeAt?: string;
  counters: EnumerateOutcome['run']['counters'];
}

/** What happens when a run pauses; on Lambda a one-time schedule continues it. */
export interface EnumerateHooks {
  onPaused(outcome: Extract<EnumerateOutcome, { status: 'paused' }>, context: Context): Promise<void>;
  now?: () => Date;
}

export const scheduleOnLambda: EnumerateHooks = {
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
};

export async function enumerateHandler(
  event: EnumerateEvent,
  context: Context,
  hooks: EnumerateHooks = scheduleOnLambda,
): Promise<EnumerateResult> {
  const action = event?.action ?? 'start';
  if (action !== 'start' && action !== 'continue') {
    throw new Error(
      `unknown action "${String(action)}": use {"action":"start"} or {"action":"continue","runId":"…"}`,
    );
  }
  if (action === 'continue' && !event.runId)
    throw new Error('{"action":"continue"} needs the runId to continue');
  const engine = await cachedAwsEngine();
  let lastRemaining: number | undefined;
  const outcome = await enumerate(
    {
      source: engine.source,
      state: engine.state,
      queue: engine.queue,
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
  if (outcome.status === 'completed') {
    metrics.addMetric('RunsCompleted', MetricUnit.Count, 1);
    metrics.addMetric('AssetsDeletedAtSource', MetricUnit.Count, outcome.run.counters.deleted);
  } else {
    await hooks.onPaused(outcome, context);
  }
  return {
    runId: outcome.run.runId,
    status: outcome.status,
    resumeAt: outcome.status === 'paused' ? outcome.resumeAt.toISOString() : undefined,
    counters: outcome.run.counters,
  };
}

export const handler = middy<EnumerateEvent, EnumerateResult, Error, Context>()
  .use(observed<EnumerateEvent, EnumerateResult>((event) => event?.runId))
  // Error middlewares run last-registered first: this one counts and logs before metrics are published.
  .onError((request) => {
    metrics.addMetric('EnumerateErrors', MetricUnit.Count, 1);
    logger.error('enumerate failed', { error: describeError(request.error) });
  })
  .handler((event, context) => enumerateHandler(event, context));

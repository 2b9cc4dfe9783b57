import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { cachedAwsEngine, describeError, replicateRecords } from '../shared/index.js';
import { engineLog, logger, metrics, MetricUnit, observed } from './observability.js';

/** Time kept back to report partial failures before Lambda's own deadline. */
const DEADLINE_MARGIN_MS = 15_000;

/** What a workstation caller (npm run replicate) may watch; Lambda passes nothing. */
export interface ReplicateHandlerOptions {
  /** Bytes copied just now, as they stream (for progress and rate). */
  onBytes?: (count: number) => void;
}

export async function replicateHandler(
  event: SQSEvent,
  context: Context,
  options: ReplicateHandlerOptions = {},
): Promise<SQSBatchResponse> {
  const engine = await cachedAwsEngine();
  const budget = Math.max(1_000, context.getRemainingTimeInMillis() - DEADLINE_MARGIN_MS);
  const summary = await replicateRecords(
    {
      source: engine.source,
      store: engine.store,
      state: engine.state,
      queue: engine.queue,
      maxReceives: engine.settings.maxReceives,
      retryBaseSeconds: engine.settings.retryBaseSeconds,
      inFlightSeconds: engine.settings.inFlightSeconds,
      log: engineLog,
      onBytes: options.onBytes,
    },
    event.Records,
    { deadline: Date.now() + budget, concurrency: engine.settings.workerConcurrency },
  );
  metrics.addMetric('AssetsReplicated', MetricUnit.Count, summary.replicated);
  metrics.addMetric('BytesReplicated', MetricUnit.Bytes, summary.bytes);
  metrics.addMetric('AssetsFailed', MetricUnit.Count, summary.deadLettered);
  metrics.addMetric('AssetsRetried', MetricUnit.Count, summary.batchItemFailures.length);
  return { batchItemFailures: summary.batchItemFailures };
}

export const handler = middy<SQSEvent, SQSBatchResponse, Error, Context>()
  // The batch's message ids: a line of any asset in it can be traced to its SQS message.
  .use(observed<SQSEvent, SQSBatchResponse>((event) => event?.Records?.map((record) => record.messageId)))
  .onError((request) => {
    logger.error('replicate batch failed', { error: describeError(request.error) });
  })
  .handler((event, context) => replicateHandler(event, context));

import middy from '@middy/core';
import type { Context, LambdaFunctionURLEvent, LambdaFunctionURLResult } from 'aws-lambda';
import { cachedWebhookDeps, describeError, handleNotification, MAX_BODY_BYTES } from '../shared/index.js';
import { engineLog, logger, metrics, MetricUnit, observed } from './observability.js';

/** What a test may set; Lambda passes nothing. */
export interface WebhookHandlerOptions {
  /** The clock the notification's timestamp is checked against. */
  now?: () => Date;
}

/** Turns a function URL request into the engine's webhook request and its answer into an HTTP response. */
export async function webhookHandler(
  event: LambdaFunctionURLEvent,
  options: WebhookHandlerOptions = {},
): Promise<LambdaFunctionURLResult> {
  const raw = event.body ?? '';
  // Checked on the encoded length first, so an oversized body is never decoded.
  if (raw.length > MAX_BODY_BYTES * 2)
    return { statusCode: 413, body: '{"message":"the body is too large"}' };
  const body = event.isBase64Encoded ? Buffer.from(raw, 'base64') : Buffer.from(raw, 'utf8');
  const headers = Object.fromEntries(
    Object.entries(event.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]),
  );
  const deps = await cachedWebhookDeps();
  const response = await handleNotification(
    { ...deps, log: engineLog, ...(options.now ? { now: options.now } : {}) },
    { method: event.requestContext?.http?.method ?? 'POST', headers, body },
  );
  metrics.addMetric(
    response.status === 200 ? 'NotificationsHandled' : 'NotificationsRejected',
    MetricUnit.Count,
    1,
  );
  const enqueued = response.outcomes.filter((o) => o === 'enqueued').length;
  if (enqueued > 0) metrics.addMetric('AssetsEnqueued', MetricUnit.Count, enqueued);
  return {
    statusCode: response.status,
    headers: { 'content-type': 'application/json' },
    body: response.body,
  };
}

export const handler = middy<LambdaFunctionURLEvent, LambdaFunctionURLResult, Error, Context>()
  // The function URL's request id: every line of one notification can be traced to its request.
  .use(observed<LambdaFunctionURLEvent, LambdaFunctionURLResult>((event) => event?.requestContext?.requestId))
  .onError((request) => {
    // The error never holds the body; the event is not logged.
    logger.error('webhook failed', { error: describeError(request.error) });
    request.response = {
      statusCode: 500,
      body: '{"message":"internal error; the notification will be retried"}',
    };
  })
  .handler((event) => webhookHandler(event));

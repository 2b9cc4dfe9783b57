import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import type { MiddlewareObj } from '@middy/core';
import type { Context } from 'aws-lambda';
import type { Log } from '../shared/index.js';
import { sourceMappedErrors } from './sourceMappedStacks.js';

export const logger = new Logger({
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'cloudinary-replicator',
});

export const metrics = new Metrics({
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'CloudinaryReplicator',
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'cloudinary-replicator',
});

export { MetricUnit };

/** The engine's log port on Powertools' structured logger. */
export const engineLog: Log = {
  debug: (message, extra) => logger.debug(message, extra ?? {}),
  info: (message, extra) => logger.info(message, extra ?? {}),
  warn: (message, extra) => logger.warn(message, extra ?? {}),
  error: (message, extra) => logger.error(message, extra ?? {}),
};

/**
 * Powertools' middlewares for a handler: Lambda context and `correlation_id` (from `correlationId`
 * of the event) on every log line, reset after each invocation; metrics published after it, success
 * or error, with a `ColdStart` metric on the first; the error an invocation fails with, source-mapped.
 */
export function observed<TEvent, TResult>(
  correlationId: (event: TEvent) => unknown,
): MiddlewareObj<TEvent, TResult, Error, Context>[] {
  return [
    // First in, so last out: the stack is mapped just before the error leaves for the runtime.
    sourceMappedErrors(),
    injectLambdaContext(logger, { resetKeys: true }),
    // A function, not `correlationIdPath`: that option needs a JMESPath interpreter in every bundle.
    {
      before: (request) => {
        const id = correlationId(request.event);
        if (id !== undefined) logger.setCorrelationId(id);
      },
    },
    logMetrics(metrics, { captureColdStartMetric: true }),
  ];
}

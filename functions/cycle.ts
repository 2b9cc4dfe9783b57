import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
} from '@aws-sdk/client-sqs';
import type { Context } from 'aws-lambda';
import {
  awsEngineFromEnv,
  createAwsClients,
  required,
  RetryableError,
  sqsEventFromMessages,
  unavailableNotes,
  type AwsClients,
  type RunRecord,
} from '../shared/index.js';
import { enumerateHandler, type EnumerateResult } from './enumerate.js';
import { replicateHandler } from './replicate.js';

/** Settings come from process.env, exactly as the handlers read them on Lambda. */
export interface CycleOptions {
  clients?: AwsClients;
  /** Parallel "Lambda invocations" draining the queue. */
  workers?: number;
  /** Messages per invocation, like the event source's batch size. */
  batchSize?: number;
  /** Simulated Lambda timeout per invocation. */
  invocationTimeoutMs?: number;
  now?: () => Date;
  /** Waits until a paused run may continue (a countdown on a terminal; tests move a clock). */
  sleepUntil?: (at: Date) => Promise<void>;
  onEvent?: (event: CycleEvent) => void;
}

export type CycleEvent =
  | { kind: 'enumerated'; result: EnumerateResult }
  | { kind: 'waiting'; until: Date; runId: string }
  | { kind: 'batch'; received: number; failed: number }
  | { kind: 'bytes'; count: number };

export interface CycleSummary {
  runId: string;
  run?: RunRecord;
  invocations: { enumerate: number; replicate: number };
  /** Handler invocations that reported some messages for redelivery. */
  retried: number;
  /** What the account's listing could not give (Search tier, no Search), one line each. */
  unavailable: string[];
}

export function lambdaContext(timeoutMs: number, name: string): Context {
  const deadline = Date.now() + timeoutMs;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: name,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${name}`,
    memoryLimitInMB: '512',
    awsRequestId: `${name}-${Math.random().toString(16).slice(2)}`,
    logGroupName: `/aws/lambda/${name}`,
    logStreamName: 'workstation',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** Pause between empty polls of the queue. */
const IDLE_POLL_MS = 250;

const realSleepUntil = (at: Date) =>
  new Promise<void>((r) => setTimeout(r, Math.max(0, at.getTime() - Date.now())));

/**
 * One whole replication cycle from a workstation, with the deployed handlers: the enumerator runs
 * (waiting out rate-limit windows instead of scheduling itself), while workers drain the queue the
 * way Lambda's event source does — ReceiveMessage batches, the handler called with a real SQSEvent,
 * successes deleted, failures left to reappear after their visibility timeout.
 */
export async function runCycle(options: CycleOptions = {}): Promise<CycleSummary> {
  const clients = options.clients ?? createAwsClients();
  const queueUrl = required(process.env, 'QUEUE_URL', 'Take it from the stack outputs (QueueUrl).');
  const timeout = options.invocationTimeoutMs ?? 900_000;
  const sleepUntil = options.sleepUntil ?? realSleepUntil;
  const emit = options.onEvent ?? (() => undefined);
  const summary: CycleSummary = {
    runId: '',
    invocations: { enumerate: 0, replicate: 0 },
    retried: 0,
    unavailable: [],
  };
  const attrs = await clients.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }),
  );
  const queueArn = attrs.Attributes?.QueueArn ?? 'arn:aws:sqs:local:000000000000:work';

  let listingDone = false;
  let listingError: unknown;
  // The Admin API stayed down: what was listed is still copied, then the run stops with this.
  let listingStopped: Error | undefined;
  const enumerateLoop = (async () => {
    let event: { action: 'start' | 'continue'; runId?: string } = { action: 'start' };
    for (;;) {
      let paused: Date | undefined;
      summary.invocations.enumerate += 1;
      const result = await enumerateHandler(event, lambdaContext(timeout, 'enumerate'), {
        now: options.now,
        async onPaused(outcome) {
          paused = outcome.resumeAt;
          if (outcome.reason === 'source-unavailable') {
            listingStopped = new RetryableError(
              outcome.error ?? "Cloudinary's Admin API is unavailable; run again later.",
            );
          }
        },
      });
      summary.runId = result.runId;
      emit({ kind: 'enumerated', result });
      if (result.status === 'completed' || !paused || listingStopped) return;
      emit({ kind: 'waiting', until: paused, runId: result.runId });
      await sleepUntil(paused);
      event = { action: 'continue', runId: result.runId };
    }
  })()
    .catch((error: unknown) => {
      listingError = error;
    })
    .finally(() => {
      listingDone = true;
    });

  const drainLoop = async () => {
    for (;;) {
      if (listingError !== undefined) return;
      const received = await clients.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: Math.min(10, options.batchSize ?? 10),
          // Short polls: a long poll would hold an SQS-compatible test server's lock for its whole wait.
          WaitTimeSeconds: 0,
          MessageSystemAttributeNames: ['All'],
          MessageAttributeNames: ['All'],
        }),
      );
      const messages = received.Messages ?? [];
      if (messages.length === 0) {
        if (listingDone && (await queueIsEmpty(clients, queueUrl))) return;
        await new Promise((r) => setTimeout(r, IDLE_POLL_MS));
        continue;
      }
      summary.invocations.replicate += 1;
      const response = await replicateHandler(
        sqsEventFromMessages(messages, queueArn),
        lambdaContext(timeout, 'replicate'),
        { onBytes: (count) => emit({ kind: 'bytes', count }) },
      );
      const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
      const done = messages.filter((m) => !failed.has(m.MessageId ?? ''));
      if (done.length > 0) {
        await clients.sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
          }),
        );
      }
      summary.retried += failed.size;
      emit({ kind: 'batch', received: messages.length, failed: failed.size });
    }
  };

  await Promise.all([enumerateLoop, ...Array.from({ length: options.workers ?? 2 }, drainLoop)]);
  if (listingError !== undefined) throw listingError;
  if (listingStopped) throw listingStopped;
  const engine = await awsEngineFromEnv(process.env, clients);
  summary.run = await engine.state.getRun(summary.runId);
  summary.unavailable = unavailableNotes(summary.run?.listingCapabilities);
  return summary;
}

async function queueIsEmpty(clients: AwsClients, queueUrl: string): Promise<boolean> {
  const attrs = await clients.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: [
        'ApproximateNumberOfMessages',
        'ApproximateNumberOfMessagesNotVisible',
        'ApproximateNumberOfMessagesDelayed',
      ],
    }),
  );
  const a = attrs.Attributes ?? {};
  return (
    Number(a.ApproximateNumberOfMessages ?? 0) +
      Number(a.ApproximateNumberOfMessagesNotVisible ?? 0) +
      Number(a.ApproximateNumberOfMessagesDelayed ?? 0) ===
    0
  );
}

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
  settingsFromEnv,
  sqsEventFromMessages,
  unavailableNotes,
  type AwsClients,
  type RunRecord,
  type StateStore,
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
  /** Retry quarantined assets too. */
  redrive?: boolean;
}

/** Copies a run still waits for, and where they are. */
export interface PendingCopies {
  runId: string;
  /** Messages of the run that have not settled yet. */
  left: number;
  /** Hidden: being copied, or held by a worker that stopped (they come back within `inFlightSeconds`). */
  inFlight: number;
  /** Waiting out a retry delay. */
  delayed: number;
  inFlightSeconds: number;
}

export type CycleEvent =
  | { kind: 'enumerated'; result: EnumerateResult }
  | { kind: 'waiting'; until: Date; runId: string }
  | { kind: 'continuing'; run: RunRecord }
  | { kind: 'pending'; pending: PendingCopies }
  | { kind: 'batch'; received: number; failed: number }
  | { kind: 'bytes'; count: number };

export interface CycleSummary {
  runId: string;
  run?: RunRecord;
  /** An interrupted run whose copies this cycle finished before starting its own. */
  continued?: RunRecord;
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
/** Least time between two reports of unchanged work left. */
const PENDING_EVERY_MS = 5_000;

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

  const engine = await awsEngineFromEnv(process.env, clients);
  const inFlightSeconds = settingsFromEnv(process.env).inFlightSeconds;
  let lastPending = { key: '', left: -1, at: 0 };
  const drain = async (runId: () => string, listingDone: () => boolean, stop: () => boolean) => {
    for (;;) {
      if (stop()) return;
      const received = await clients.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: Math.min(10, options.batchSize ?? 10),
          // Short polls: a long poll would hold an SQS-compatible test server's lock for its whole wait.
          WaitTimeSeconds: 0,
          // Hidden only for the in-flight time: the handler's heartbeat keeps them hidden while it works.
          VisibilityTimeout: inFlightSeconds,
          MessageSystemAttributeNames: ['All'],
          MessageAttributeNames: ['All'],
        }),
      );
      const messages = received.Messages ?? [];
      if (messages.length === 0) {
        if (stop()) return;
        if (!listingDone()) {
          await new Promise((r) => setTimeout(r, IDLE_POLL_MS));
          continue;
        }
        const pending = await pendingCopies(engine.state, clients, queueUrl, runId(), inFlightSeconds);
        if (pending === undefined) return;
        // Said when the copies left change, and otherwise at most every few seconds (the queue's counts flicker).
        const key = JSON.stringify(pending);
        const now = Date.now();
        if (
          key !== lastPending.key &&
          (pending.left !== lastPending.left || now - lastPending.at >= PENDING_EVERY_MS)
        ) {
          emit({ kind: 'pending', pending });
          lastPending = { key, left: pending.left, at: now };
        }
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
  const workers = options.workers ?? 2;

  // A run interrupted after its listing (kill -9, a closed laptop) still owns messages: finish its
  // copies first, instead of listing again and queueing a second message for each of them.
  const latest = await engine.state.latestRun();
  if (latest?.phase === 'completed' && (latest.counters.settled ?? 0) < latest.counters.enqueued) {
    emit({ kind: 'continuing', run: latest });
    let settled = false;
    await Promise.all(
      Array.from({ length: workers }, () =>
        drain(
          () => latest.runId,
          () => true,
          () => settled,
        ).finally(() => {
          settled = true;
        }),
      ),
    );
    summary.continued = await engine.state.getRun(latest.runId);
  }

  let listingDone = false;
  let listingError: unknown;
  // The Admin API stayed down: what was listed is still copied, then the run stops with this.
  let listingStopped: Error | undefined;
  const enumerateLoop = (async () => {
    let event: { action: 'start' | 'continue'; runId?: string; redrive?: boolean } = {
      action: 'start',
      ...(options.redrive ? { redrive: true } : {}),
    };
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

  let finished = false;
  await Promise.all([
    enumerateLoop,
    ...Array.from({ length: workers }, () =>
      drain(
        () => summary.runId,
        () => listingDone,
        () => finished || listingError !== undefined,
      ).finally(() => {
        finished = true;
      }),
    ),
  ]);
  if (listingError !== undefined) throw listingError;
  if (listingStopped) throw listingStopped;
  summary.run = await engine.state.getRun(summary.runId);
  summary.unavailable = unavailableNotes(summary.run?.listingCapabilities);
  return summary;
}

/**
 * What the run still waits for; undefined once it is done: every message it sent has settled, or
 * the queue holds nothing at all (messages lost to a purge or their retention can never settle).
 */
async function pendingCopies(
  state: StateStore,
  clients: AwsClients,
  queueUrl: string,
  runId: string,
  inFlightSeconds: number,
): Promise<PendingCopies | undefined> {
  const run = await state.getRun(runId);
  const left = run ? run.counters.enqueued - (run.counters.settled ?? 0) : 0;
  if (left <= 0) return undefined;
  const queue = await queueCounts(clients, queueUrl);
  if (queue.visible + queue.inFlight + queue.delayed === 0) return undefined;
  return { runId, left, inFlight: queue.inFlight, delayed: queue.delayed, inFlightSeconds };
}

async function queueCounts(
  clients: AwsClients,
  queueUrl: string,
): Promise<{ visible: number; inFlight: number; delayed: number }> {
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
  return {
    visible: Number(a.ApproximateNumberOfMessages ?? 0),
    inFlight: Number(a.ApproximateNumberOfMessagesNotVisible ?? 0),
    delayed: Number(a.ApproximateNumberOfMessagesDelayed ?? 0),
  };
}

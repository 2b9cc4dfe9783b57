import { CreateScheduleCommand, type SchedulerClient } from '@aws-sdk/client-scheduler';

export interface ContinuationTarget {
  scheduler: SchedulerClient;
  group: string;
  roleArn: string;
  functionArn: string;
}

/** Scheduler's `at()` wants local date-time without zone or milliseconds; we pin the zone to UTC. */
function atExpression(date: Date): string {
  return `at(${date.toISOString().slice(0, 19)})`;
}

/**
 * Schedules the enumerator to continue `runId` at `at` through a one-time EventBridge Scheduler
 * schedule that deletes itself. A schedule, unlike a self-sent queue message, is not a loop that
 * Lambda's recursion detection stops after ~16 rounds.
 */
export function scheduleContinuation(
  target: ContinuationTarget,
  runId: string,
  at: Date,
  now: Date = new Date(),
): Promise<string> {
  return scheduleEnumerator(target, 'continue', { action: 'continue', runId }, at, now);
}

/** Schedules the enumerator to check at `at` whether `runId`'s copies are done, to stop the workers. */
export function scheduleSettleCheck(
  target: ContinuationTarget,
  runId: string,
  at: Date,
  now: Date = new Date(),
): Promise<string> {
  return scheduleEnumerator(target, 'settle', { action: 'settle', runId }, at, now);
}

async function scheduleEnumerator(
  target: ContinuationTarget,
  prefix: string,
  input: { action: string; runId: string },
  at: Date,
  now: Date,
): Promise<string> {
  // A minute ahead at least, so the schedule is never created in the past.
  const when = new Date(Math.max(at.getTime() + 5_000, now.getTime() + 60_000));
  const name =
    `${prefix}-${input.runId}`.slice(0, 48).replace(/[^0-9A-Za-z_.-]/gu, '-') +
    `-${Math.floor(when.getTime() / 1000)}`;
  await target.scheduler.send(
    new CreateScheduleCommand({
      Name: name,
      GroupName: target.group,
      ScheduleExpression: atExpression(when),
      ScheduleExpressionTimezone: 'UTC',
      FlexibleTimeWindow: { Mode: 'OFF' },
      ActionAfterCompletion: 'DELETE',
      Target: {
        Arn: target.functionArn,
        RoleArn: target.roleArn,
        Input: JSON.stringify(input),
        RetryPolicy: { MaximumRetryAttempts: 10, MaximumEventAgeInSeconds: 3600 },
      },
    }),
  );
  return name;
}

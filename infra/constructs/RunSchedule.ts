import { Aws, Duration, RemovalPolicy, Stack, TimeZone } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import {
  Schedule,
  ScheduleExpression,
  ScheduleGroup,
  ScheduleTargetInput,
  TimeWindow,
} from 'aws-cdk-lib/aws-scheduler';
import { LambdaInvoke } from 'aws-cdk-lib/aws-scheduler-targets';
import { Construct } from 'constructs';
import { acknowledgeWildcardResource } from '../nag.js';
import type { ReplicatorFunction } from './ReplicatorFunction.js';

/** The payload that starts a run (the same one `npm run run-now` sends). */
export const START_PAYLOAD = { action: 'start' } as const;

export interface RunScheduleProps {
  enumerateFunction: ReplicatorFunction;
  /** `cron(...)` or `rate(...)`. */
  expression: string;
  timeZone: string;
  enabled: boolean;
}

/**
 * Starts a run every day (EventBridge Scheduler) and gives the enumerator what it needs to
 * continue itself with one-time schedules: a schedule group of its own and the role the
 * Scheduler assumes to invoke it. The daily schedule sits outside that group, so the enumerator
 * can never delete it.
 */
export class RunSchedule extends Construct {
  readonly dailyRun: Schedule;
  readonly continuationGroup: ScheduleGroup;
  /** Assumed by the Scheduler for the daily and the continuation schedules: invokes the enumerator only. */
  readonly invokeRole: Role;

  constructor(scope: Construct, id: string, props: RunScheduleProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.continuationGroup = new ScheduleGroup(this, 'ContinuationGroup', {
      // Pending continuations are useless without the function they invoke.
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const defaultGroupArn = stack.formatArn({
      service: 'scheduler',
      resource: 'schedule-group',
      resourceName: 'default',
    });
    this.invokeRole = new Role(this, 'InvokeRole', {
      description: 'Assumed by EventBridge Scheduler to start or continue a backup run',
      assumedBy: new ServicePrincipal('scheduler.amazonaws.com', {
        conditions: {
          StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
          ArnEquals: { 'aws:SourceArn': [defaultGroupArn, this.continuationGroup.scheduleGroupArn] },
        },
      }),
    });
    props.enumerateFunction.grantInvoke(this.invokeRole);
    acknowledgeWildcardResource(
      this.invokeRole,
      `${props.enumerateFunction.functionArn}:*`,
      'Function.grantInvoke also allows the versions and aliases of this one function (ARN:*); no other function can be invoked.',
    );

    this.dailyRun = new Schedule(this, 'DailyRun', {
      description: 'Starts the daily Cloudinary backup run',
      schedule: ScheduleExpression.expression(props.expression, TimeZone.of(props.timeZone)),
      timeWindow: TimeWindow.off(),
      enabled: props.enabled,
      target: new LambdaInvoke(props.enumerateFunction, {
        role: this.invokeRole,
        input: ScheduleTargetInput.fromObject(START_PAYLOAD),
        // A run that cannot start within an hour waits for the next day rather than overlapping it.
        maxEventAge: Duration.hours(1),
        retryAttempts: 3,
      }),
    });
  }
}

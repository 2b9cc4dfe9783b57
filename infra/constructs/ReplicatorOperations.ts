import { Aws, Duration, Validations } from 'aws-cdk-lib';
import {
  Alarm,
  AlarmStatusWidget,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  Metric,
  SingleValueWidget,
  Stats,
  TextWidget,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import type { HorizontalAnnotation, IMetric } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

/** Custom metrics the functions emit through Powertools (dimension `service`). */
export const CUSTOM_METRICS = {
  runsCompleted: 'RunsCompleted',
  assetsListed: 'AssetsListed',
  assetsEnqueued: 'AssetsEnqueued',
  assetsReplicated: 'AssetsReplicated',
  assetsFailed: 'AssetsFailed',
  assetsRetried: 'AssetsRetried',
  assetsDeletedAtSource: 'AssetsDeletedAtSource',
  bytesReplicated: 'BytesReplicated',
  adminCallsRemaining: 'AdminCallsRemaining',
} as const;

const FREE_PLAN_ADMIN_CALLS = 500;

/** The stale-run alarm looks at hourly sums: the shortest period CloudWatch lets span more than a day. */
const STALE_RUN_PERIOD = Duration.hours(1);

export interface ReplicatorOperationsProps {
  enumerateFunction: IFunction;
  replicateFunction: IFunction;
  queue: IQueue;
  deadLetterQueue: IQueue;
  metricsNamespace: string;
  serviceName: string;
  staleRunAlarmHours: number;
  queueAgeAlarmHours: number;
  /** ADMIN_RESERVE: calls, or a share of the hourly limit (`2%`). */
  adminReserve: string;
  alarmEmail: string | undefined;
  /** A CloudWatch dashboard ($3 a month once an account has more than three). */
  dashboard: boolean;
  /** The faster, partly redundant alarms: enumerator errors, worker throttles, queue age ($0.10 each). */
  extraAlarms: boolean;
}

/**
 * Alarms to one SNS topic and a dashboard. Three alarms cover every way a backup stops: dead letters
 * waiting, no run finished (listed and every copy settled), worker invocations failing. The extra
 * ones only say the same sooner: enumerator errors and worker throttles and work waiting too long
 * all end as a run that does not finish.
 */
export class ReplicatorOperations extends Construct {
  readonly topic: Topic;
  /** Undefined when `dashboard` is off. */
  readonly dashboard: Dashboard | undefined;
  readonly deadLettersAlarm: Alarm;
  readonly staleRunAlarm: Alarm;
  readonly workerErrorsAlarm: Alarm;
  /** Set with `extraAlarms`. */
  readonly enumeratorErrorsAlarm: Alarm | undefined;
  readonly workerThrottlesAlarm: Alarm | undefined;
  readonly queueAgeAlarm: Alarm | undefined;
  /** Console address of the dashboard, for the stack output. */
  readonly dashboardUrl: string | undefined;

  constructor(scope: Construct, id: string, props: ReplicatorOperationsProps) {
    super(scope, id);
    const custom = (metricName: string, statistic: string = Stats.SUM, period = Duration.hours(1)): Metric =>
      new Metric({
        namespace: props.metricsNamespace,
        metricName,
        dimensionsMap: { service: props.serviceName },
        statistic,
        period,
      });

    this.topic = new Topic(this, 'AlarmTopic', {
      displayName: 'Cloudinary backup alarms',
      enforceSSL: true,
    });
    Validations.of(this.topic.node.defaultChild ?? this.topic).acknowledge({
      id: 'AwsSolutions-SNS2',
      reason:
        'Alarm notifications carry only alarm names and states. CloudWatch cannot publish to a topic encrypted with the AWS managed SNS key, and a customer managed key for this alone would cost more than the rest of a small deployment.',
    });
    if (props.alarmEmail) this.topic.addSubscription(new EmailSubscription(props.alarmEmail));
    const notify = new SnsAction(this.topic);

    this.deadLettersAlarm = new Alarm(this, 'DeadLettersAlarm', {
      alarmDescription:
        'Assets gave up after every retry and wait in the dead-letter queue with the reason. Read them, fix the cause, then redrive (README: Deploy > Redrive).',
      metric: props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        statistic: Stats.MAXIMUM,
        period: Duration.minutes(5),
      }),
      threshold: 0,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });

    // Every hour without a finished run breaches (missing data counts); all of them in a row alarm.
    // A run counts once its copies settled, so stuck or throttled workers end here too.
    this.staleRunAlarm = new Alarm(this, 'StaleRunAlarm', {
      alarmDescription: `No backup run has finished in ${props.staleRunAlarmHours} hours (listed, and every copy it queued settled): the schedule is off, the credentials are wrong, a run is stuck, or the workers are not copying (throttled, switched off). Check the enumerate and replicate log groups.`,
      metric: custom(CUSTOM_METRICS.runsCompleted, Stats.SUM, STALE_RUN_PERIOD),
      threshold: 1,
      comparisonOperator: ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: props.staleRunAlarmHours,
      datapointsToAlarm: props.staleRunAlarmHours,
      treatMissingData: TreatMissingData.BREACHING,
    });

    // A worker-wide failure (an IAM or KMS denial, a broken bundle) fails whole invocations: minutes,
    // not the hours it takes every message to exhaust its retries into the dead-letter queue.
    // Any failed or throttled invocation within 5 minutes.
    const anyInFiveMinutes = (id: string, alarmDescription: string, metric: Metric): Alarm =>
      new Alarm(this, id, {
        alarmDescription,
        metric,
        threshold: 0,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      });
    const fiveMinuteSum = { statistic: Stats.SUM, period: Duration.minutes(5) };

    this.workerErrorsAlarm = anyInFiveMinutes(
      'WorkerErrorsAlarm',
      'Replicate invocations failed: the worker cannot copy anything (permissions, a key, a deploy). Check its log group.',
      props.replicateFunction.metricErrors(fiveMinuteSum),
    );

    if (props.extraAlarms) {
      this.enumeratorErrorsAlarm = anyInFiveMinutes(
        'EnumeratorErrorsAlarm',
        'The enumerate function failed (bad Cloudinary credentials, a missing bucket or table, a bug): the run stopped. Check its log group.',
        props.enumerateFunction.metricErrors(fiveMinuteSum),
      );

      // SQS hands a throttled batch back: throttling that lasts ends as a run that does not finish.
      this.workerThrottlesAlarm = anyInFiveMinutes(
        'WorkerThrottlesAlarm',
        'Replicate invocations were throttled: the account concurrency or the reserved concurrency is exhausted. Copies wait in the queue.',
        props.replicateFunction.metricThrottles(fiveMinuteSum),
      );

      this.queueAgeAlarm = new Alarm(this, 'QueueAgeAlarm', {
        alarmDescription: `An asset has waited ${props.queueAgeAlarmHours} hours in the work queue: the workers are not copying. Check the replicate log group and the dead-letter queue.`,
        metric: props.queue.metricApproximateAgeOfOldestMessage({
          statistic: Stats.MAXIMUM,
          period: Duration.minutes(15),
        }),
        threshold: props.queueAgeAlarmHours * 3600,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      });
    }

    for (const alarm of this.alarms) {
      alarm.addAlarmAction(notify);
      alarm.addOkAction(notify);
    }

    if (props.dashboard) {
      this.dashboard = this.buildDashboard(props, custom);
      this.dashboardUrl = `https://${Aws.REGION}.console.aws.amazon.com/cloudwatch/home?region=${Aws.REGION}#dashboards:name=${this.dashboard.dashboardName}`;
    }
  }

  /** Every alarm the stack has. */
  get alarms(): Alarm[] {
    return [
      this.deadLettersAlarm,
      this.staleRunAlarm,
      this.workerErrorsAlarm,
      this.enumeratorErrorsAlarm,
      this.workerThrottlesAlarm,
      this.queueAgeAlarm,
    ].filter((alarm): alarm is Alarm => alarm !== undefined);
  }

  /** The dashboard: runs, assets, bytes, the Admin API budget, queues, Lambda health, alarms. */
  private buildDashboard(
    props: ReplicatorOperationsProps,
    custom: (metricName: string, statistic?: string, period?: Duration) => Metric,
  ): Dashboard {
    const dashboard = new Dashboard(this, 'Dashboard', { defaultInterval: Duration.days(7) });
    const functions: [string, IFunction][] = [
      ['Enumerate', props.enumerateFunction],
      ['Replicate', props.replicateFunction],
    ];
    const lambdaMetrics = (what: string, pick: (fn: IFunction) => Metric): IMetric[] =>
      functions.map(([name, fn]) => pick(fn).with({ label: `${name} ${what}` }));
    dashboard.addWidgets(
      new TextWidget({
        markdown:
          '## Cloudinary backup\nAssets flow left to right: **listed** by the daily run, **enqueued** when new or changed, **replicated** or **failed** by the workers. A healthy day: replicated = enqueued, failed = 0, DLQ = 0.',
        width: 24,
        height: 2,
      }),
    );
    dashboard.addWidgets(
      new GraphWidget({
        title: 'Assets per hour',
        left: [
          custom(CUSTOM_METRICS.assetsListed).with({ label: 'Listed' }),
          custom(CUSTOM_METRICS.assetsEnqueued).with({ label: 'Enqueued' }),
          custom(CUSTOM_METRICS.assetsReplicated).with({ label: 'Replicated' }),
          custom(CUSTOM_METRICS.assetsFailed).with({ label: 'Failed' }),
          custom(CUSTOM_METRICS.assetsRetried).with({ label: 'Retried' }),
          custom(CUSTOM_METRICS.assetsDeletedAtSource).with({ label: 'Deleted at source' }),
        ],
        width: 12,
      }),
      new GraphWidget({
        title: 'Bytes replicated per hour',
        left: [custom(CUSTOM_METRICS.bytesReplicated).with({ label: 'Bytes' })],
        width: 6,
      }),
      new SingleValueWidget({
        title: 'Runs finished (last day)',
        metrics: [custom(CUSTOM_METRICS.runsCompleted, Stats.SUM, Duration.days(1))],
        width: 6,
      }),
    );
    // A share is drawn for the free plan's 500 calls an hour.
    const share = props.adminReserve.endsWith('%');
    const reserveLine: HorizontalAnnotation = {
      value: share
        ? Math.max(1, Math.ceil((FREE_PLAN_ADMIN_CALLS * Number.parseFloat(props.adminReserve)) / 100))
        : Number(props.adminReserve),
      label: share ? `Reserve (${props.adminReserve} of 500)` : 'Reserve',
    };
    dashboard.addWidgets(
      new GraphWidget({
        title: 'Cloudinary Admin API calls left this hour',
        left: [
          custom(CUSTOM_METRICS.adminCallsRemaining, Stats.MINIMUM, Duration.minutes(5)).with({
            label: 'Left',
          }),
        ],
        leftAnnotations: [reserveLine],
        width: 8,
      }),
      new GraphWidget({
        title: 'Work queue depth',
        left: [
          props.queue.metricApproximateNumberOfMessagesVisible({
            label: 'Waiting',
            statistic: Stats.MAXIMUM,
          }),
          props.queue.metricApproximateNumberOfMessagesNotVisible({
            label: 'In flight',
            statistic: Stats.MAXIMUM,
          }),
        ],
        width: 8,
      }),
      new GraphWidget({
        title: 'Dead-letter queue depth',
        left: [
          props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
            label: 'Dead letters',
            statistic: Stats.MAXIMUM,
          }),
        ],
        width: 8,
      }),
    );
    dashboard.addWidgets(
      new GraphWidget({
        title: 'Lambda errors and throttles',
        left: [
          ...lambdaMetrics('errors', (fn) => fn.metricErrors({ statistic: Stats.SUM })),
          ...lambdaMetrics('throttles', (fn) => fn.metricThrottles({ statistic: Stats.SUM })),
        ],
        width: 8,
      }),
      new GraphWidget({
        title: 'Lambda duration (p50, max)',
        left: [
          ...lambdaMetrics('p50', (fn) => fn.metricDuration({ statistic: Stats.p(50) })),
          ...lambdaMetrics('max', (fn) => fn.metricDuration({ statistic: Stats.MAXIMUM })),
        ],
        width: 8,
      }),
      new AlarmStatusWidget({
        title: 'Alarms',
        alarms: this.alarms,
        width: 8,
      }),
    );

    return dashboard;
  }
}

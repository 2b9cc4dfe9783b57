import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CfnOutput, Duration, Stack } from 'aws-cdk-lib';
import type { StackProps } from 'aws-cdk-lib';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { EventSourceMapping, FunctionUrlAuthType, RecursiveLoop } from 'aws-cdk-lib/aws-lambda';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import type { ReplicatorConfig } from './config.js';
import {
  ASSETS_PREFIX,
  BackupBucket,
  CloudinarySecret,
  MANIFESTS_PREFIX,
  OperatorPolicy,
  ReplicatorFunction,
  ReplicatorOperations,
  RunSchedule,
  StateTable,
  WORKER_NODE_OPTIONS,
  WorkQueue,
} from './constructs/index.js';

/** The repository root: holds package.json, package-lock.json and `functions/`. */
const PROJECT_ROOT = dirname(dirname(fileURLToPath(import.meta.url)));

export interface ReplicatorStackProps extends StackProps {
  config: ReplicatorConfig;
}

/**
 * The whole replicator in one environment-agnostic stack: the bucket, the state table, the work
 * queue, the Cloudinary secret, the enumerate and replicate functions, their schedule, alarms and
 * dashboard.
 */
export class ReplicatorStack extends Stack {
  readonly backup: BackupBucket;
  readonly state: StateTable;
  readonly work: WorkQueue;
  readonly cloudinary: CloudinarySecret;
  readonly enumerate: ReplicatorFunction;
  readonly replicate: ReplicatorFunction;
  /** The replicate function's event source mapping, switched on and off by the enumerator. */
  readonly workers: EventSourceMapping;
  readonly schedule: RunSchedule;
  readonly operations: ReplicatorOperations;
  readonly operator: OperatorPolicy;
  /** Only with `webhooks`: the function behind the public notification URL. */
  readonly webhook?: ReplicatorFunction;
  readonly webhookUrl?: string;

  constructor(scope: Construct, id: string, props: ReplicatorStackProps) {
    super(scope, id, props);
    const { config } = props;

    this.backup = new BackupBucket(this, 'Backup', {
      encryption: config.bucketEncryption,
      archiveStorageClass: config.archiveStorageClass,
      archiveAfterDays: config.archiveAfterDays,
      noncurrentArchiveAfterDays: config.noncurrentArchiveAfterDays,
      noncurrentExpireAfterDays: config.noncurrentExpireAfterDays,
      abortIncompleteUploadAfterDays: config.abortIncompleteUploadAfterDays,
      objectLockDays: config.objectLockDays,
      breakGlassRoleArn: config.breakGlassRoleArn,
    });
    this.state = new StateTable(this, 'State');
    this.cloudinary = new CloudinarySecret(this, 'Cloudinary', {
      existing: config.cloudinarySecret,
      parameterName: config.cloudinaryParameter ?? `/${config.stackName}/CLOUDINARY_URL`,
    });

    const common = {
      projectRoot: PROJECT_ROOT,
      logRetention: config.logRetentionDays as RetentionDays,
      serviceName: config.serviceName,
      metricsNamespace: config.metricsNamespace,
      logLevel: config.logLevel,
    };
    const sourceSettings = { RESOURCE_TYPES: config.resourceTypes, DELIVERY_TYPES: config.deliveryTypes };

    this.replicate = new ReplicatorFunction(this, 'Replicate', {
      ...common,
      entry: join(PROJECT_ROOT, 'functions', 'replicate.ts'),
      description: 'Copies one batch of Cloudinary assets into the backup bucket, verified',
      memorySize: config.workerMemoryMb,
      timeout: Duration.seconds(config.workerTimeoutSeconds),
      // A copy longer than one invocation continues through a new message on its own queue: past
      // ~16 hops Lambda would stop it (a 5 GB/invocation chain ends near 85 GB at 6 MB/s), so the
      // loop is allowed and bounded by the engine (progress on every hop, MAX_HANDOVERS).
      recursiveLoop: RecursiveLoop.ALLOW,
      nodeOptions: WORKER_NODE_OPTIONS,
    });
    this.work = new WorkQueue(this, 'Work', {
      consumerTimeout: Duration.seconds(config.workerTimeoutSeconds),
      maxReceives: config.maxReceives,
    });

    this.enumerate = new ReplicatorFunction(this, 'Enumerate', {
      ...common,
      entry: join(PROJECT_ROOT, 'functions', 'enumerate.ts'),
      description:
        'Lists Cloudinary and enqueues new or changed assets; continues itself after rate-limit resets',
      memorySize: config.enumeratorMemoryMb,
      timeout: Duration.seconds(config.enumeratorTimeoutSeconds),
      // One run at a time: a start that finds the enumerator busy waits in Lambda's async queue.
      ...(config.enumeratorSingleInstance ? { reservedConcurrentExecutions: 1 } : {}),
    });
    // A failed run is not retried by Lambda (the next day or a continuation picks it up; the errors
    // alarm tells the owner), so a retry can never overlap a continuation.
    this.enumerate.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: Duration.hours(6) });
    this.schedule = new RunSchedule(this, 'Runs', {
      enumerateFunction: this.enumerate,
      expression: config.scheduleExpression,
      timeZone: config.scheduleTimeZone,
      enabled: config.scheduleEnabled,
    });

    // Each grant is what the function's code calls (proven by test/iam-contract.test.ts).
    this.enumerate
      // Diff pages (BatchGetItem), run records (GetItem, UpdateItem, Query), deletions (Scan, UpdateItem).
      .bindTable(this.state.table, [
        'dynamodb:BatchGetItem',
        'dynamodb:GetItem',
        'dynamodb:UpdateItem',
        'dynamodb:Query',
        'dynamodb:Scan',
      ])
      // The manifest is written in parts (one per page), then listed, read and joined when the run
      // ends; a joined manifest past the part size is a multipart upload, aborted if it fails.
      .bindBucket(
        this.backup.bucket,
        MANIFESTS_PREFIX,
        ['s3:PutObject', 's3:GetObject', 's3:AbortMultipartUpload'],
        {
          list: true,
        },
      )
      .bindQueue(this.work.queue, 'QUEUE_URL', ['sqs:SendMessage'])
      .bindCloudinary(this.cloudinary)
      .bindContinuation(this.schedule.continuationGroup, this.schedule.invokeRole)
      .bindSettings({
        ...sourceSettings,
        ADMIN_RESERVE: config.adminReserve,
        LISTING_API: config.listingApi,
        RECONCILE_EVERY_DAYS: config.reconcileEveryDays,
      });

    this.replicate
      // Leases and records (UpdateItem, PutItem), the failures of earlier attempts (BatchGetItem),
      // run counters credited to the latest run (Query, UpdateItem), the checkpoint of a copy in
      // progress (GetItem, PutItem, DeleteItem), the copy of a renamed asset's asset_id (Query on the
      // byAssetId index).
      .bindTable(this.state.table, [
        'dynamodb:BatchGetItem',
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:UpdateItem',
        'dynamodb:DeleteItem',
        'dynamodb:Query',
      ])
      // Multipart uploads, continued by a later attempt once ListParts shows the recorded parts
      // (aborted when the version changes or the copy is given up), or found completed by an attempt
      // that died before recording it (HeadObject); an asset whose MD5 the source did not announce
      // gets it as a tag on the version just written; a renamed asset is copied from the version held
      // under its old id (CopyObject reads it) and the copy's size checked.
      .bindBucket(this.backup.bucket, ASSETS_PREFIX, [
        's3:PutObject',
        's3:GetObject',
        's3:AbortMultipartUpload',
        's3:ListMultipartUploadParts',
        's3:PutObjectVersionTagging',
        's3:GetObjectVersion',
      ])
      // The event source mapping receives and deletes with this role (SERVICE_USED_ACTIONS); the
      // worker itself delays a retry (ChangeMessageVisibility), deletes what it dead-letters and
      // hands a copy still running at its deadline to a next invocation (SendMessage).
      .bindQueue(this.work.queue, 'QUEUE_URL', [
        'sqs:SendMessage',
        'sqs:ReceiveMessage',
        'sqs:DeleteMessage',
        'sqs:GetQueueAttributes',
        'sqs:ChangeMessageVisibility',
      ])
      .bindTableIndex(this.state.table, this.state.assetIdIndex, ['dynamodb:Query'])
      .bindQueue(this.work.deadLetterQueue, 'DLQ_URL', ['sqs:SendMessage'])
      .bindCloudinary(this.cloudinary)
      .bindSettings({
        ...sourceSettings,
        MAX_RECEIVES: config.maxReceives,
        WORKER_CONCURRENCY: config.workerAssetConcurrency,
        PART_SIZE_MB: config.partSizeMb,
        UPLOAD_QUEUE_SIZE: config.uploadQueueSize,
      });
    // Before copying a large asset, the worker aborts the unfinished upload of a copy that died
    // (kill -9, a lost invocation); listing uploads takes no prefix condition in IAM.
    this.replicate.addToRolePolicy(
      new PolicyStatement({
        actions: ['s3:ListBucketMultipartUploads'],
        resources: [this.backup.bucket.bucketArn],
      }),
    );
    // A mapping of its own rather than SqsEventSource, whose automatic grant adds sqs:GetQueueUrl.
    // Created off: sending work switches it on, and the enumerator switches it off once a run's
    // copies are done, so nothing long-polls an empty queue between runs (README, "Cost").
    this.workers = new EventSourceMapping(this, 'ReplicateWork', {
      target: this.replicate,
      eventSourceArn: this.work.queue.queueArn,
      batchSize: config.workerBatchSize,
      reportBatchItemFailures: true,
      maxConcurrency: config.workerMaxConcurrency,
      enabled: false,
    });
    this.enumerate.bindWorkerSwitch(this.workers, this.work.queue);

    if (config.webhooks) {
      this.webhook = new ReplicatorFunction(this, 'Webhook', {
        ...common,
        entry: join(PROJECT_ROOT, 'functions', 'webhook.ts'),
        description: 'Verifies Cloudinary notifications and enqueues or records what they announce',
        memorySize: 256,
        timeout: Duration.seconds(10),
        // The throttle on a public URL: an unauthenticated flood costs at most this many short invocations at once.
        reservedConcurrentExecutions: config.webhookConcurrency,
      });
      this.webhook
        // Versions and bytes of an asset (BatchGetItem), the notification ledger and deletions (UpdateItem).
        .bindTable(this.state.table, ['dynamodb:BatchGetItem', 'dynamodb:UpdateItem'])
        .bindQueue(this.work.queue, 'QUEUE_URL', ['sqs:SendMessage'])
        .bindCloudinary(this.cloudinary)
        // What it enqueues switches the idle workers on.
        .bindWorkerSwitch(this.workers)
        .bindSettings({ ...sourceSettings, WEBHOOK_SIGNATURE_ALGORITHM: config.webhookSignatureAlgorithm });
      // No IAM auth: Cloudinary cannot sign AWS requests; the handler checks Cloudinary's own signature.
      this.webhookUrl = this.webhook.addFunctionUrl({ authType: FunctionUrlAuthType.NONE }).url;
    }

    if (this.cloudinary.matchedBySuffix) {
      for (const fn of [this.enumerate, this.replicate, ...(this.webhook ? [this.webhook] : [])]) {
        fn.acknowledgeWildcard(
          this.cloudinary.resourceArn,
          'The secret was given by name or partial ARN, so IAM matches the 6-character suffix Secrets Manager adds; it still names this one secret.',
        );
      }
    }

    this.operations = new ReplicatorOperations(this, 'Operations', {
      enumerateFunction: this.enumerate,
      replicateFunction: this.replicate,
      queue: this.work.queue,
      deadLetterQueue: this.work.deadLetterQueue,
      metricsNamespace: config.metricsNamespace,
      serviceName: config.serviceName,
      staleRunAlarmHours: config.staleRunAlarmHours,
      queueAgeAlarmHours: config.queueAgeAlarmHours,
      adminReserve: config.adminReserve,
      alarmEmail: config.alarmEmail,
      dashboard: config.dashboard,
      extraAlarms: config.extraAlarms,
    });

    this.operator = new OperatorPolicy(this, 'Operator', {
      bucket: this.backup.bucket,
      table: this.state.table,
      assetIdIndex: this.state.assetIdIndex,
      queue: this.work.queue,
      deadLetterQueue: this.work.deadLetterQueue,
      cloudinary: this.cloudinary,
      enumerateFunction: this.enumerate,
    });

    const outputs: Record<string, [string, string]> = {
      BucketName: [this.backup.bucket.bucketName, 'Backup bucket (assets/ and manifests/)'],
      TableName: [this.state.table.tableName, 'State table (asset states and runs)'],
      QueueUrl: [this.work.queue.queueUrl, 'Work queue: one message per asset to copy'],
      DlqUrl: [this.work.deadLetterQueue.queueUrl, 'Dead-letter queue: assets that failed every retry'],
      ...(this.cloudinary.parameterName
        ? {
            CloudinaryParameterName: [
              this.cloudinary.parameterName,
              'SSM SecureString parameter to put CLOUDINARY_URL in (aws ssm put-parameter)',
            ] as [string, string],
          }
        : {}),
      ...(this.cloudinary.secret
        ? {
            SecretArn: [this.cloudinary.secret.secretArn, 'Secret that holds CLOUDINARY_URL'] as [
              string,
              string,
            ],
          }
        : {}),
      EnumerateFunctionName: [
        this.enumerate.functionName,
        'Invoke with {"action":"start"} (or npm run run-now) to start a run now',
      ],
      ...(this.operations.dashboardUrl
        ? { DashboardUrl: [this.operations.dashboardUrl, 'CloudWatch dashboard'] as [string, string] }
        : {}),
      ...(this.webhookUrl
        ? {
            WebhookUrl: [
              this.webhookUrl,
              'Cloudinary notification URL (npm run webhook -- --register registers it)',
            ] as [string, string],
          }
        : {}),
      AlarmTopicArn: [this.operations.topic.topicArn, 'SNS topic the alarms notify'],
      OperatorPolicyArn: [
        this.operator.policy.managedPolicyArn,
        'Attach to the IAM user or role that runs npm run run-now, replicate and pull',
      ],
    };
    for (const [name, [value, description]] of Object.entries(outputs)) {
      new CfnOutput(this, name, { value, description });
    }
  }
}

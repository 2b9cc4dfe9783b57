import { join } from 'node:path';
import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import type { Duration } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IRole } from 'aws-cdk-lib/aws-iam';
import { Architecture, RecursiveLoop, Runtime } from 'aws-cdk-lib/aws-lambda';
import type { IEventSourceMapping } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat, SourceMapMode } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import type { IScheduleGroup } from 'aws-cdk-lib/aws-scheduler';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { acknowledgeWildcardResource } from '../nag.js';
import type { CloudinarySecret } from './CloudinarySecret.js';

/**
 * Actions a function's role holds that no code of ours calls: the Lambda service uses them with
 * the function's role (its logs, and the SQS event source mapping that polls for the worker).
 * Each has its reason; the IAM contract test accepts these unexercised and no others.
 */
export const SERVICE_USED_ACTIONS: Record<string, string> = {
  'logs:CreateLogStream':
    'Lambda creates the log stream of each execution environment with the function role.',
  'logs:PutLogEvents': "Lambda writes the function's output to its log group with the function role.",
  'sqs:ReceiveMessage': 'The event source mapping receives batches from the work queue with the worker role.',
  'sqs:DeleteMessage': 'The event source mapping deletes the messages a batch handled with the worker role.',
  'sqs:GetQueueAttributes':
    'The event source mapping reads the queue attributes when it is created or enabled.',
};

/**
 * Credential sources Lambda never uses: it hands the role's credentials to the function in environment
 * variables, so the SDK's default chain stops at them. The others (profiles, SSO, web identity,
 * containers, instance metadata, and the STS/SSO clients they call) load only through `import()` when
 * reached; left out, each bundle is 12% smaller and starts with about 8% less CPU (README: Cold start).
 */
export const UNUSED_ON_LAMBDA = [
  '@aws-sdk/credential-provider-http',
  '@aws-sdk/credential-provider-ini',
  '@aws-sdk/credential-provider-login',
  '@aws-sdk/credential-provider-process',
  '@aws-sdk/credential-provider-sso',
  '@aws-sdk/credential-provider-web-identity',
  '@aws-sdk/nested-clients',
  '@aws-sdk/token-providers',
  '@smithy/credential-provider-imds',
];

/** Lets an ESM bundle load CommonJS dependencies that call `require` (the SDK's and Powertools' transitive deps). */
const ESM_REQUIRE_BANNER =
  "import { createRequire as __replicatorCreateRequire } from 'node:module'; const require = __replicatorCreateRequire(import.meta.url);";

export interface ReplicatorFunctionProps {
  /** Absolute path of the handler's TypeScript entry (exports `handler`). */
  entry: string;
  /** Folder holding package.json and package-lock.json. */
  projectRoot: string;
  description: string;
  memorySize: number;
  timeout: Duration;
  reservedConcurrentExecutions?: number;
  /** Lambda's recursive loop detection (Terminate by default). */
  recursiveLoop?: RecursiveLoop;
  logRetention: RetentionDays;
  serviceName: string;
  metricsNamespace: string;
  logLevel: string;
  /** NODE_OPTIONS of the function (V8 flags), when it needs any. */
  nodeOptions?: string;
}

/**
 * The replicate function's V8 flags: a 4 MiB semi-space. Copies stream through Buffers outside the
 * heap and keep a few MB of objects alive, so the young generation V8 would size from the machine
 * only holds garbage longer: with it, a 20 GiB copy peaked at 246 MiB RSS instead of 303 MiB at the
 * same speed (`npm run bench:large -- --gib 20`, README "Performance").
 */
export const WORKER_NODE_OPTIONS = '--max-semi-space-size=4';

/**
 * A NodejsFunction with the house defaults: ARM64, Node 24, an ESM bundle with a source map (read
 * when an invocation fails) built by the local esbuild, an explicit log group with retention, its own role holding only
 * what the `bind*` helpers grant, and Powertools settings.
 */
export class ReplicatorFunction extends NodejsFunction {
  readonly executionRole: Role;

  constructor(scope: Construct, id: string, props: ReplicatorFunctionProps) {
    const logGroup = new LogGroup(scope, `${id}Logs`, {
      retention: props.logRetention,
      // Logs are operational; the backup itself lives in the retained bucket and table.
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // No AWSLambdaBasicExecutionRole: it allows writing to every log group in the account.
    const executionRole = new Role(scope, `${id}Role`, {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `Execution role of ${id}: only what its bind* calls grant`,
    });
    super(scope, id, {
      entry: props.entry,
      handler: 'handler',
      projectRoot: props.projectRoot,
      depsLockFilePath: join(props.projectRoot, 'package-lock.json'),
      description: props.description,
      // The project's own Node (package.json engines and the `node` dev dependency) is the same major: move both together.
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize,
      timeout: props.timeout,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      ...(props.recursiveLoop ? { recursiveLoop: props.recursiveLoop } : {}),
      role: executionRole,
      logGroup,
      // No NODE_OPTIONS=--enable-source-maps: it parses the map at every cold start (+20% init); the
      // handlers read it only when an invocation fails (functions/sourceMappedStacks.ts).
      environment: {
        POWERTOOLS_SERVICE_NAME: props.serviceName,
        POWERTOOLS_METRICS_NAMESPACE: props.metricsNamespace,
        LOG_LEVEL: props.logLevel,
        ...(props.nodeOptions ? { NODE_OPTIONS: props.nodeOptions } : {}),
      },
      bundling: {
        format: OutputFormat.ESM,
        mainFields: ['module', 'main'],
        banner: ESM_REQUIRE_BANNER,
        minify: true,
        keepNames: true,
        sourceMap: true,
        sourceMapMode: SourceMapMode.DEFAULT,
        sourcesContent: false,
        // Bundle the SDK too: the code is tested against the versions in package-lock.json, not the runtime's.
        externalModules: UNUSED_ON_LAMBDA,
        // There is no Docker engine here; the local esbuild does the bundling.
        forceDockerBundling: false,
      },
    });
    this.executionRole = executionRole;
    logGroup.grantWrite(executionRole);
  }

  /** Sets `envName` to the table name and grants `actions` (what this function's path calls) on it. */
  bindTable(table: ITable, actions: readonly string[], envName = 'TABLE_NAME'): this {
    // The table only: `table.grant` would add every index (`/index/*`) once the table has one.
    this.addToRolePolicy(new PolicyStatement({ actions: [...actions], resources: [table.tableArn] }));
    this.addEnvironment(envName, table.tableName);
    return this;
  }

  /** Grants `actions` on one index of the table (bound with bindTable), and nothing else there. */
  bindTableIndex(table: ITable, indexName: string, actions: readonly string[]): this {
    this.addToRolePolicy(
      new PolicyStatement({ actions: [...actions], resources: [`${table.tableArn}/index/${indexName}`] }),
    );
    return this;
  }

  /**
   * Sets `envName` to the bucket name and grants `actions` on the objects under `prefix` only;
   * with `list`, also lets the function list keys under that prefix (and nowhere else).
   */
  bindBucket(
    bucket: IBucket,
    prefix: string,
    actions: string[],
    { list = false, envName = 'BUCKET_NAME' }: { list?: boolean; envName?: string } = {},
  ): this {
    const objects = bucket.arnForObjects(`${prefix}*`);
    this.addToRolePolicy(new PolicyStatement({ actions, resources: [objects] }));
    if (list) {
      this.addToRolePolicy(
        new PolicyStatement({
          actions: ['s3:ListBucket'],
          resources: [bucket.bucketArn],
          conditions: { StringLike: { 's3:prefix': `${prefix}*` } },
        }),
      );
    }
    this.acknowledgeWildcard(
      objects,
      `Object keys are derived from each asset at runtime; the grant is limited to ${actions.join(', ')} on keys under ${prefix} in the backup bucket.`,
    );
    if (bucket.encryptionKey) {
      // Writing (multipart uploads included) needs a data key and Decrypt; reading needs Decrypt.
      const keyActions = actions.includes('s3:PutObject')
        ? ['kms:GenerateDataKey', 'kms:Decrypt']
        : ['kms:Decrypt'];
      bucket.encryptionKey.grant(this, ...keyActions);
    }
    this.addEnvironment(envName, bucket.bucketName);
    return this;
  }

  /** Sets `envName` to the queue URL and grants exactly `actions` on the queue. */
  bindQueue(queue: IQueue, envName: string, actions: readonly string[]): this {
    if (actions.length > 0) {
      this.addToRolePolicy(new PolicyStatement({ actions: [...actions], resources: [queue.queueArn] }));
      // A queue with a customer managed key needs it to send (GenerateDataKey) and receive (Decrypt).
      queue.encryptionMasterKey?.grant(this, 'kms:GenerateDataKey', 'kms:Decrypt');
    }
    this.addEnvironment(envName, queue.queueUrl);
    return this;
  }

  /** Tells the function where CLOUDINARY_URL lives (never its value) and lets it read it at runtime. */
  bindCloudinary(credentials: CloudinarySecret): this {
    credentials.grantRead(this);
    this.addEnvironment(credentials.envName, credentials.envValue);
    return this;
  }

  /**
   * Lets the function continue itself later: it creates one-time, self-deleting schedules in `group`
   * that the Scheduler runs as `invokeRole` (CONTINUATION_GROUP, CONTINUATION_ROLE_ARN).
   */
  bindContinuation(group: IScheduleGroup, invokeRole: IRole): this {
    const schedules = Stack.of(this).formatArn({
      service: 'scheduler',
      resource: 'schedule',
      resourceName: `${group.scheduleGroupName}/*`,
    });
    this.addToRolePolicy(
      // Continuations delete themselves after they run (ActionAfterCompletion DELETE).
      new PolicyStatement({ actions: ['scheduler:CreateSchedule'], resources: [schedules] }),
    );
    this.acknowledgeWildcard(
      schedules,
      "Continuation schedules are named per paused run at runtime; the grant is limited to creating schedules in this stack's continuation group, which cannot hold or replace the daily schedule.",
    );
    this.addToRolePolicy(
      new PolicyStatement({
        actions: ['iam:PassRole'],
        resources: [invokeRole.roleArn],
        conditions: { StringEquals: { 'iam:PassedToService': 'scheduler.amazonaws.com' } },
      }),
    );
    this.addEnvironment('CONTINUATION_GROUP', group.scheduleGroupName);
    this.addEnvironment('CONTINUATION_ROLE_ARN', invokeRole.roleArn);
    return this;
  }

  /**
   * Lets the function switch the workers' event source mapping on and off (WORKER_MAPPING_ID), and,
   * given the queue, look at its counts before it switches them off (a sender that only starts them needs none).
   */
  bindWorkerSwitch(mapping: IEventSourceMapping, queue?: IQueue): this {
    this.addToRolePolicy(
      new PolicyStatement({
        actions: ['lambda:GetEventSourceMapping', 'lambda:UpdateEventSourceMapping'],
        resources: [mapping.eventSourceMappingArn],
      }),
    );
    if (queue) {
      this.addToRolePolicy(
        new PolicyStatement({ actions: ['sqs:GetQueueAttributes'], resources: [queue.queueArn] }),
      );
    }
    this.addEnvironment('WORKER_MAPPING_ID', mapping.eventSourceMappingId);
    return this;
  }

  /** Records why a wildcard resource in this function's policy is needed (cdk-nag IAM5, this resource only). */
  acknowledgeWildcard(resource: string, reason: string): void {
    acknowledgeWildcardResource(this.executionRole, resource, reason);
  }

  /** Sets plain settings, stringified; keeps every environment variable the handler reads in one place. */
  bindSettings(settings: Record<string, string | number | boolean | readonly string[]>): this {
    for (const [name, value] of Object.entries(settings)) {
      this.addEnvironment(name, Array.isArray(value) ? value.join(',') : String(value));
    }
    return this;
  }
}

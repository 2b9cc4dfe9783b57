import { App, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import type { Dashboard } from 'aws-cdk-lib/aws-cloudwatch';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  ASSETS_PREFIX as SHARED_ASSETS_PREFIX,
  MANIFESTS_PREFIX as SHARED_MANIFESTS_PREFIX,
} from '../shared/constants.js';
import { readConfig } from '../infra/config.js';
import { ASSETS_PREFIX, CUSTOM_METRICS, MANIFESTS_PREFIX } from '../infra/constructs/index.js';
import { flattenReference } from '../infra/nag.js';
import { buildReplicatorApp } from '../infra/replicatorApp.js';
import type { ReplicatorStack } from '../infra/ReplicatorStack.js';

// Template assertions do not need the Lambda bundles; test/infraSynth.test.ts bundles through the CLI.
const SKIP_BUNDLING = { 'aws:cdk:bundling-stacks': [] };

type Json = Record<string, unknown>;
interface CfnResource {
  Type: string;
  Properties?: Json;
  DeletionPolicy?: string;
  UpdateReplacePolicy?: string;
  Metadata?: { cdk_nag?: { rules_to_suppress: { id: string; reason: string }[] } };
}
interface Statement {
  Effect: string;
  Action: string | string[];
  Resource?: unknown;
  Condition?: Json;
  Principal?: unknown;
}

/** Asserts that the template holds a `type` resource whose properties match `props` (objectLike). */
function expectResource(t: Template, type: string, props: unknown): void {
  t.hasResourceProperties(type, props);
}

let app: App;
let stack: ReplicatorStack;
let template: Template;
let resources: Record<string, CfnResource>;

beforeAll(() => {
  app = new App({ context: SKIP_BUNDLING });
  stack = buildReplicatorApp(app, readConfig({ context: {}, env: {} }));
  template = Template.fromStack(stack);
  resources = template.toJSON().Resources as Record<string, CfnResource>;
});

function ofType(type: string): [string, CfnResource][] {
  return Object.entries(resources).filter(([, r]) => r.Type === type);
}

function only(type: string): [string, CfnResource] {
  const found = ofType(type);
  expect({ type, count: found.length }).toEqual({ type, count: 1 });
  return found[0] as [string, CfnResource];
}

function logicalIdOf(construct: IConstruct): string {
  return stack.getLogicalId(construct.node.defaultChild as never);
}

function asArray<T>(value: T | T[] | undefined): T[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

function statementsOf(policy: CfnResource): Statement[] {
  return (policy.Properties?.PolicyDocument as { Statement: Statement[] }).Statement;
}

/** The IAM policy attached to a role, by the role's logical id. */
function policyOfRole(roleLogicalId: string): CfnResource {
  const found = ofType('AWS::IAM::Policy').filter(([, p]) =>
    asArray(p.Properties?.Roles as unknown[]).some(
      (r) => JSON.stringify(r) === JSON.stringify({ Ref: roleLogicalId }),
    ),
  );
  expect(found).toHaveLength(1);
  return (found[0] as [string, CfnResource])[1];
}

function functionNamed(id: 'Enumerate' | 'Replicate'): CfnResource {
  return resources[logicalIdOf(stack[id === 'Enumerate' ? 'enumerate' : 'replicate'])] as CfnResource;
}

function roleIdOf(fn: CfnResource): string {
  return ((fn.Properties?.Role as Json)['Fn::GetAtt'] as string[])[0] as string;
}

describe('backup bucket', () => {
  const bucket = (): CfnResource => only('AWS::S3::Bucket')[1];

  it('blocks every kind of public access', () => {
    expect(bucket().Properties?.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
  });

  it('encrypts objects with S3-managed keys by default', () => {
    expect(bucket().Properties?.BucketEncryption).toEqual({
      ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
    });
  });

  it('keeps every version and survives the deletion of the stack', () => {
    expect(bucket().Properties?.VersioningConfiguration).toEqual({ Status: 'Enabled' });
    expect(bucket().DeletionPolicy).toBe('Retain');
    expect(bucket().UpdateReplacePolicy).toBe('Retain');
  });

  it('refuses requests without TLS or with TLS older than 1.2', () => {
    expectResource(template, 'AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Action: 's3:*',
            Principal: { AWS: '*' },
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
          Match.objectLike({
            Effect: 'Deny',
            Action: 's3:*',
            Principal: { AWS: '*' },
            Condition: { NumericLessThan: { 's3:TlsVersion': 1.2 } },
          }),
        ]),
      },
    });
  });

  it('moves assets and their replaced versions to Glacier Instant Retrieval after 7 days and never expires them', () => {
    const rules = (bucket().Properties?.LifecycleConfiguration as { Rules: Json[] }).Rules;
    const assets = rules.find((r) => r.Prefix === 'assets/');
    expect(assets).toMatchObject({
      Status: 'Enabled',
      Transitions: [{ StorageClass: 'GLACIER_IR', TransitionInDays: 7 }],
      NoncurrentVersionTransitions: [{ StorageClass: 'GLACIER_IR', TransitionInDays: 7 }],
    });
    for (const rule of rules) {
      expect(rule).not.toHaveProperty('ExpirationInDays');
      expect(rule).not.toHaveProperty('NoncurrentVersionExpiration');
    }
  });

  it('keeps manifests in a storage class that reads instantly', () => {
    const rules = (bucket().Properties?.LifecycleConfiguration as { Rules: Json[] }).Rules;
    const manifests = rules.find((r) => r.Prefix === 'manifests/');
    expect(manifests?.Transitions).toEqual([{ StorageClass: 'STANDARD_IA', TransitionInDays: 30 }]);
    const archiveClasses = ['GLACIER', 'DEEP_ARCHIVE', 'GLACIER_IR'];
    const touchingManifests = rules.filter((r) => r.Prefix === undefined || r.Prefix === 'manifests/');
    for (const rule of touchingManifests) {
      for (const t of asArray(rule.Transitions as Json[]))
        expect(archiveClasses).not.toContain(t.StorageClass);
    }
  });

  it('aborts multipart uploads left incomplete for 3 days', () => {
    const rules = (bucket().Properties?.LifecycleConfiguration as { Rules: Json[] }).Rules;
    const abort = rules.find((r) => r.AbortIncompleteMultipartUpload !== undefined);
    expect(abort).toMatchObject({
      Status: 'Enabled',
      AbortIncompleteMultipartUpload: { DaysAfterInitiation: 3 },
    });
    expect(abort).not.toHaveProperty('Prefix');
  });

  it('leaves objects under 128 KB out of archive transitions, explicitly', () => {
    expect(bucket().Properties?.LifecycleConfiguration).toMatchObject({
      TransitionDefaultMinimumObjectSize: 'all_storage_classes_128K',
    });
  });

  it('uses the same prefixes as the engine', () => {
    expect(ASSETS_PREFIX).toBe(SHARED_ASSETS_PREFIX);
    expect(MANIFESTS_PREFIX).toBe(SHARED_MANIFESTS_PREFIX);
  });

  it('locks new versions in governance mode by default; objectLockDays 0 leaves Object Lock off', () => {
    expect(bucket().Properties?.ObjectLockConfiguration).toEqual({
      ObjectLockEnabled: 'Enabled',
      Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 30 } },
    });
    const off = new App({ context: SKIP_BUNDLING });
    const unlocked = buildReplicatorApp(
      off,
      readConfig({ context: { 'replicator:objectLockDays': '0' }, env: {} }),
    );
    const [, plain] = Object.entries(
      Template.fromStack(unlocked).toJSON().Resources as Record<string, CfnResource>,
    ).find(([, r]) => r.Type === 'AWS::S3::Bucket') as [string, CfnResource];
    expect(plain.Properties).not.toHaveProperty('ObjectLockEnabled');
  });
});

describe('state table', () => {
  it('is on-demand, keyed by pk/sk, recoverable to any point in time and retained', () => {
    const [, table] = only('AWS::DynamoDB::Table');
    expect(table.Properties).toMatchObject({
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
        { AttributeName: 'assetId', AttributeType: 'S' },
      ],
      // Renames: the states of one asset_id, keys only (an index write only when assetId changes).
      GlobalSecondaryIndexes: [
        {
          IndexName: 'byAssetId',
          KeySchema: [{ AttributeName: 'assetId', KeyType: 'HASH' }],
          Projection: { ProjectionType: 'KEYS_ONLY' },
        },
      ],
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      DeletionProtectionEnabled: true,
    });
    expect(table.DeletionPolicy).toBe('Retain');
    expect(table.UpdateReplacePolicy).toBe('Retain');
  });
});

describe('work queue', () => {
  const queueId = (): string => logicalIdOf(stack.work.queue);
  const dlqId = (): string => logicalIdOf(stack.work.deadLetterQueue);

  it('dead-letters an item one delivery after the worker gives up on it itself', () => {
    const queue = resources[queueId()] as CfnResource;
    expect(queue.Properties?.RedrivePolicy).toEqual({
      deadLetterTargetArn: { 'Fn::GetAtt': [dlqId(), 'Arn'] },
      maxReceiveCount: 6,
    });
    const env = (functionNamed('Replicate').Properties?.Environment as { Variables: Json }).Variables;
    expect(env.MAX_RECEIVES).toBe('5');
  });

  it('hides a delivered item for at least six times the worker timeout', () => {
    const queue = resources[queueId()] as CfnResource;
    const workerTimeout = functionNamed('Replicate').Properties?.Timeout as number;
    expect(queue.Properties?.VisibilityTimeout).toBeGreaterThanOrEqual(6 * workerTimeout);
  });

  it('keeps dead letters for 14 days, the longest SQS allows', () => {
    expect((resources[dlqId()] as CfnResource).Properties?.MessageRetentionPeriod).toBe(14 * 24 * 3600);
  });

  it('encrypts both queues and refuses requests without TLS', () => {
    for (const id of [queueId(), dlqId()]) {
      expect((resources[id] as CfnResource).Properties?.SqsManagedSseEnabled).toBe(true);
      expectResource(template, 'AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: id }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          ]),
        },
      });
    }
  });
});

describe('functions', () => {
  it('run on ARM64 with Node.js 24 from an ESM bundle, its source map not parsed at start', () => {
    const functions = ofType('AWS::Lambda::Function');
    expect(functions).toHaveLength(2);
    for (const [, fn] of functions) {
      expect(fn.Properties).toMatchObject({
        Architectures: ['arm64'],
        Runtime: 'nodejs24.x',
        Handler: 'index.handler',
      });
      // --enable-source-maps would parse the map at every cold start; the handlers read it when they fail.
      expect(JSON.stringify(fn.Properties?.Environment)).not.toContain('enable-source-maps');
    }
  });

  it('give the worker a small young generation, so a long copy stays within its memory bound', () => {
    const env = (id: 'Enumerate' | 'Replicate') =>
      (functionNamed(id).Properties?.Environment as { Variables: Json }).Variables;
    expect(env('Replicate').NODE_OPTIONS).toBe('--max-semi-space-size=4');
    expect(env('Enumerate').NODE_OPTIONS).toBeUndefined();
  });

  it('log to their own log group, kept 30 days', () => {
    for (const id of ['Enumerate', 'Replicate'] as const) {
      const logGroupRef = (functionNamed(id).Properties?.LoggingConfig as { LogGroup: { Ref: string } })
        .LogGroup.Ref;
      expect(resources[logGroupRef]).toMatchObject({
        Type: 'AWS::Logs::LogGroup',
        Properties: { RetentionInDays: 30 },
      });
    }
  });

  it('get exactly the environment their handlers read, and never the Cloudinary URL itself', () => {
    const common = [
      'POWERTOOLS_SERVICE_NAME',
      'POWERTOOLS_METRICS_NAMESPACE',
      'LOG_LEVEL',
      'TABLE_NAME',
      'BUCKET_NAME',
      'QUEUE_URL',
      'CLOUDINARY_PARAMETER',
      'RESOURCE_TYPES',
      'DELIVERY_TYPES',
    ];
    const envOf = (id: 'Enumerate' | 'Replicate'): Json =>
      (functionNamed(id).Properties?.Environment as { Variables: Json }).Variables;
    expect(Object.keys(envOf('Enumerate')).sort()).toEqual(
      [
        ...common,
        'ADMIN_RESERVE',
        'LISTING_API',
        'RECONCILE_EVERY_DAYS',
        'CONTINUATION_GROUP',
        'CONTINUATION_ROLE_ARN',
        'WORKER_MAPPING_ID',
      ].sort(),
    );
    expect(Object.keys(envOf('Replicate')).sort()).toEqual(
      [
        ...common,
        'DLQ_URL',
        'MAX_RECEIVES',
        'NODE_OPTIONS',
        'PART_SIZE_MB',
        'UPLOAD_QUEUE_SIZE',
        'WORKER_CONCURRENCY',
      ].sort(),
    );
    expect(envOf('Enumerate')).toMatchObject({
      POWERTOOLS_SERVICE_NAME: 'cloudinary-s3-replicator',
      POWERTOOLS_METRICS_NAMESPACE: 'CloudinaryS3Replicator',
      LOG_LEVEL: 'INFO',
      RESOURCE_TYPES: 'image,video,raw',
      DELIVERY_TYPES: 'upload,private,authenticated',
      ADMIN_RESERVE: '2%',
      LISTING_API: 'search',
    });
    expect(envOf('Replicate')).toMatchObject({
      PART_SIZE_MB: '8',
      UPLOAD_QUEUE_SIZE: '4',
      WORKER_CONCURRENCY: '4',
    });
    for (const id of ['Enumerate', 'Replicate'] as const) {
      expect(envOf(id).CLOUDINARY_PARAMETER).toBe('/CloudinaryS3Replicator/CLOUDINARY_URL');
      expect(envOf(id)).not.toHaveProperty('CLOUDINARY_SECRET_ID');
      expect(JSON.stringify(envOf(id))).not.toContain('cloudinary://');
    }
  });

  it('replicate takes work in batches, reports single failures and is capped in concurrency', () => {
    const [, mapping] = only('AWS::Lambda::EventSourceMapping');
    expect(mapping.Properties).toMatchObject({
      EventSourceArn: { 'Fn::GetAtt': [logicalIdOf(stack.work.queue), 'Arn'] },
      FunctionName: { Ref: logicalIdOf(stack.replicate) },
      BatchSize: 8,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 5 },
    });
  });

  it('the workers do not poll the queue until work is sent, and only the enumerator switches them, on their mapping only', () => {
    const [mappingId, mapping] = only('AWS::Lambda::EventSourceMapping');
    expect(mapping.Properties?.Enabled).toBe(false);
    const switching = (id: 'Enumerate' | 'Replicate') =>
      statementsOf(policyOfRole(roleIdOf(functionNamed(id)))).filter((s) =>
        asArray(s.Action).some((a) => String(a).startsWith('lambda:')),
      );
    expect(switching('Replicate')).toEqual([]);
    const [statement, ...others] = switching('Enumerate');
    expect(others).toEqual([]);
    expect(asArray(statement?.Action).sort()).toEqual([
      'lambda:GetEventSourceMapping',
      'lambda:UpdateEventSourceMapping',
    ]);
    const resource = JSON.stringify(statement?.Resource);
    expect(resource).toContain(':event-source-mapping:');
    expect(resource).toContain(`{"Ref":"${mappingId}"}`);
    const env = (functionNamed('Enumerate').Properties?.Environment as { Variables: Json }).Variables;
    expect(env.WORKER_MAPPING_ID).toEqual({ Ref: mappingId });
  });

  it('replicate may hand a long copy on through its own queue past the ~16 hops recursive loop detection allows', () => {
    expect(functionNamed('Replicate').Properties?.RecursiveLoop).toBe('Allow');
    expect(functionNamed('Enumerate').Properties?.RecursiveLoop).toBeUndefined();
  });

  it('have roles of their own without AWS managed policies', () => {
    for (const id of ['Enumerate', 'Replicate'] as const) {
      const role = resources[roleIdOf(functionNamed(id))] as CfnResource;
      expect(role.Properties).not.toHaveProperty('ManagedPolicyArns');
      expect(role.Properties?.AssumeRolePolicyDocument).toMatchObject({
        Statement: [
          { Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' },
        ],
      });
    }
  });

  it('replicate works only under assets/ and enumerate only under manifests/', () => {
    const objectStatements = (id: 'Enumerate' | 'Replicate'): Statement[] =>
      statementsOf(policyOfRole(roleIdOf(functionNamed(id)))).filter((s) =>
        asArray(s.Action).some((a) => a.startsWith('s3:')),
      );
    const bucketId = logicalIdOf(stack.backup.bucket);
    const onPrefix = (prefix: string): unknown => ({
      'Fn::Join': ['', [{ 'Fn::GetAtt': [bucketId, 'Arn'] }, `/${prefix}*`]],
    });
    expect(objectStatements('Replicate')).toEqual([
      {
        Effect: 'Allow',
        Action: [
          's3:PutObject',
          's3:GetObject',
          's3:AbortMultipartUpload',
          's3:ListMultipartUploadParts',
          's3:PutObjectVersionTagging',
          // A renamed asset is copied from the version held under its old id.
          's3:GetObjectVersion',
        ],
        Resource: onPrefix('assets/'),
      },
      // Lists unfinished uploads (IAM has no prefix condition for it) to abort what a dead copy left.
      {
        Effect: 'Allow',
        Action: 's3:ListBucketMultipartUploads',
        Resource: { 'Fn::GetAtt': [bucketId, 'Arn'] },
      },
    ]);
    expect(objectStatements('Enumerate')).toEqual([
      {
        Effect: 'Allow',
        Action: ['s3:PutObject', 's3:GetObject', 's3:AbortMultipartUpload'],
        Resource: onPrefix('manifests/'),
      },
      {
        Effect: 'Allow',
        Action: 's3:ListBucket',
        Resource: { 'Fn::GetAtt': [bucketId, 'Arn'] },
        Condition: { StringLike: { 's3:prefix': 'manifests/*' } },
      },
    ]);
  });

  it('the enumerator sends work, the worker sends dead letters and the copies it hands over', () => {
    const sendsTo = (id: 'Enumerate' | 'Replicate'): unknown[] =>
      statementsOf(policyOfRole(roleIdOf(functionNamed(id))))
        .filter((s) => asArray(s.Action).includes('sqs:SendMessage'))
        .flatMap((s) => asArray(s.Resource));
    expect(sendsTo('Enumerate')).toEqual([{ 'Fn::GetAtt': [logicalIdOf(stack.work.queue), 'Arn'] }]);
    expect(sendsTo('Replicate')).toEqual([
      { 'Fn::GetAtt': [logicalIdOf(stack.work.queue), 'Arn'] },
      { 'Fn::GetAtt': [logicalIdOf(stack.work.deadLetterQueue), 'Arn'] },
    ]);
  });
});

describe('schedule', () => {
  it('starts a run every day at 03:00 UTC with {"action":"start"}', () => {
    const [, schedule] = only('AWS::Scheduler::Schedule');
    expect(schedule.Properties).toMatchObject({
      ScheduleExpression: 'cron(0 3 * * ? *)',
      ScheduleExpressionTimezone: 'UTC',
      State: 'ENABLED',
      FlexibleTimeWindow: { Mode: 'OFF' },
      Target: {
        Arn: { 'Fn::GetAtt': [logicalIdOf(stack.enumerate), 'Arn'] },
        RoleArn: { 'Fn::GetAtt': [logicalIdOf(stack.schedule.invokeRole), 'Arn'] },
      },
    });
    const target = schedule.Properties?.Target as { Input: string };
    expect(JSON.parse(target.Input)).toEqual({ action: 'start' });
    expect(schedule.Properties).not.toHaveProperty('GroupName');
  });

  it('the Scheduler may invoke the enumerator and nothing else, on behalf of this account only', () => {
    const roleId = logicalIdOf(stack.schedule.invokeRole);
    const role = resources[roleId] as CfnResource;
    expect(role.Properties?.AssumeRolePolicyDocument).toMatchObject({
      Statement: [
        {
          Effect: 'Allow',
          Principal: { Service: 'scheduler.amazonaws.com' },
          Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
        },
      ],
    });
    const statements = statementsOf(policyOfRole(roleId));
    expect(statements.flatMap((s) => asArray(s.Action))).toEqual(['lambda:InvokeFunction']);
    const enumerateArn = { 'Fn::GetAtt': [logicalIdOf(stack.enumerate), 'Arn'] };
    expect(statements[0]?.Resource).toEqual([enumerateArn, { 'Fn::Join': ['', [enumerateArn, ':*']] }]);
  });

  it('the enumerator continues itself only through its own schedule group and role', () => {
    const statements = statementsOf(policyOfRole(roleIdOf(functionNamed('Enumerate'))));
    const groupName = (resources[logicalIdOf(stack.schedule.continuationGroup)] as CfnResource).Properties
      ?.Name as string;
    const scheduling = statements.find((s) => asArray(s.Action).includes('scheduler:CreateSchedule'));
    expect(scheduling?.Action).toEqual('scheduler:CreateSchedule');
    expect(flattenReference(scheduling?.Resource)).toBe(
      `arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:schedule/${groupName}/*`,
    );
    const passRole = statements.find((s) => asArray(s.Action).includes('iam:PassRole'));
    expect(passRole).toEqual({
      Effect: 'Allow',
      Action: 'iam:PassRole',
      Resource: { 'Fn::GetAtt': [logicalIdOf(stack.schedule.invokeRole), 'Arn'] },
      Condition: { StringEquals: { 'iam:PassedToService': 'scheduler.amazonaws.com' } },
    });
    const env = (functionNamed('Enumerate').Properties?.Environment as { Variables: Json }).Variables;
    expect(env.CONTINUATION_GROUP).toBe(groupName);
    expect(env.CONTINUATION_ROLE_ARN).toEqual({
      'Fn::GetAtt': [logicalIdOf(stack.schedule.invokeRole), 'Arn'],
    });
  });
});

describe('Cloudinary credentials', () => {
  it('live in an SSM SecureString by default: no Secrets Manager secret, no monthly fee', () => {
    expect(ofType('AWS::SecretsManager::Secret')).toEqual([]);
    expect(ofType('AWS::SSM::Parameter')).toEqual([]);
  });

  it('are readable by the two functions and nothing else', () => {
    const parameter = ':parameter/CloudinaryS3Replicator/CLOUDINARY_URL';
    const readers = ofType('AWS::IAM::Policy')
      .filter(([, p]) => statementsOf(p).some((s) => JSON.stringify(s.Resource ?? null).includes(parameter)))
      .flatMap(([, p]) => asArray(p.Properties?.Roles as Json[]).map((r) => r.Ref));
    expect(readers.sort()).toEqual(
      [roleIdOf(functionNamed('Enumerate')), roleIdOf(functionNamed('Replicate'))].sort(),
    );
    for (const roleId of readers) {
      const onParameter = statementsOf(policyOfRole(roleId as string)).filter((s) =>
        JSON.stringify(s.Resource).includes(parameter),
      );
      expect(onParameter.flatMap((s) => asArray(s.Action))).toEqual(['ssm:GetParameter']);
    }
  });
});

describe('IAM', () => {
  it('allows no wildcard action and no "*" resource anywhere', () => {
    for (const [, policy] of ofType('AWS::IAM::Policy')) {
      for (const statement of statementsOf(policy).filter((s) => s.Effect === 'Allow')) {
        for (const action of asArray(statement.Action)) expect(action).not.toContain('*');
        for (const resource of asArray(statement.Resource)) expect(resource).not.toBe('*');
      }
    }
  });

  it('gives a written reason, in the template, for every resource pattern with a wildcard', () => {
    let wildcards = 0;
    for (const [id, policy] of ofType('AWS::IAM::Policy')) {
      const acknowledged = new Map(
        (policy.Metadata?.cdk_nag?.rules_to_suppress ?? []).map((rule) => [rule.id, rule.reason]),
      );
      for (const statement of statementsOf(policy).filter((s) => s.Effect === 'Allow')) {
        for (const resource of asArray(statement.Resource)
          .map(flattenReference)
          .filter((r) => r.includes('*'))) {
          wildcards++;
          const reason = acknowledged.get(`AwsSolutions-IAM5[Resource::${resource}]`);
          expect({ id, resource, reason }).toEqual({
            id,
            resource,
            reason: expect.stringMatching(/^.{40,}$/u),
          });
        }
      }
    }
    // assets/*, manifests/*, the continuation group's schedules, the enumerator's versions.
    expect(wildcards).toBe(4);
  });
});

describe('operations', () => {
  const alarmNamed = (construct: IConstruct): CfnResource => resources[logicalIdOf(construct)] as CfnResource;
  const topicRef = (): Json => ({ Ref: logicalIdOf(stack.operations.topic) });

  it('alarms as soon as an asset lands in the dead-letter queue', () => {
    expect(alarmNamed(stack.operations.deadLettersAlarm).Properties).toMatchObject({
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [
        {
          Name: 'QueueName',
          Value: { 'Fn::GetAtt': [logicalIdOf(stack.work.deadLetterQueue), 'QueueName'] },
        },
      ],
      ComparisonOperator: 'GreaterThanThreshold',
      Threshold: 0,
      EvaluationPeriods: 1,
    });
  });

  it('runs one enumerator at a time and never retries a failed run behind a continuation', () => {
    const enumerate = resources[logicalIdOf(stack.enumerate)] as CfnResource;
    expect(enumerate.Properties?.ReservedConcurrentExecutions).toBe(1);
    expectResource(template, 'AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: logicalIdOf(stack.enumerate) },
      MaximumRetryAttempts: 0,
    });
    const shared = new App({ context: SKIP_BUNDLING });
    const noReserve = buildReplicatorApp(
      shared,
      readConfig({ context: { 'replicator:enumeratorSingleInstance': 'false' }, env: {} }),
    );
    const functions = Object.values(
      Template.fromStack(noReserve).toJSON().Resources as Record<string, CfnResource>,
    ).filter((r) => r.Type === 'AWS::Lambda::Function');
    expect(functions.every((f) => f.Properties?.ReservedConcurrentExecutions === undefined)).toBe(true);
  });

  it('alarms within minutes when replicate invocations fail as a whole', () => {
    expect(alarmNamed(stack.operations.workerErrorsAlarm).Properties).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: logicalIdOf(stack.replicate) } }],
      Period: 300,
      ComparisonOperator: 'GreaterThanThreshold',
      Threshold: 0,
    });
  });

  describe('with extraAlarms, three more that say sooner what the default three catch', () => {
    let extra: ReplicatorStack;
    let extraResources: Record<string, CfnResource>;
    beforeAll(() => {
      extra = buildReplicatorApp(
        new App({ context: SKIP_BUNDLING }),
        readConfig({ context: { 'replicator:extraAlarms': 'true' }, env: {} }),
      );
      extraResources = Template.fromStack(extra).toJSON().Resources as Record<string, CfnResource>;
    });
    // The same constructs, so the same logical ids as in the default stack.
    const extraAlarm = (construct: IConstruct | undefined): Json => {
      if (!construct) throw new Error('the alarm was not created');
      return (extraResources[logicalIdOf(construct)] as CfnResource).Properties as Json;
    };

    it('is off by default: three alarm metrics, $0.30 a month', () => {
      expect(stack.operations.enumeratorErrorsAlarm).toBeUndefined();
      expect(stack.operations.workerThrottlesAlarm).toBeUndefined();
      expect(stack.operations.queueAgeAlarm).toBeUndefined();
      expect(ofType('AWS::CloudWatch::Alarm')).toHaveLength(3);
      expect(Object.values(extraResources).filter((r) => r.Type === 'AWS::CloudWatch::Alarm')).toHaveLength(
        6,
      );
    });

    it('alarms when the enumerate function fails', () => {
      expect(extraAlarm(extra.operations.enumeratorErrorsAlarm)).toMatchObject({
        Namespace: 'AWS/Lambda',
        MetricName: 'Errors',
        Dimensions: [{ Name: 'FunctionName', Value: { Ref: logicalIdOf(stack.enumerate) } }],
        ComparisonOperator: 'GreaterThanThreshold',
        Threshold: 0,
      });
    });

    it('alarms within minutes when replicate invocations are throttled', () => {
      expect(extraAlarm(extra.operations.workerThrottlesAlarm)).toMatchObject({
        Namespace: 'AWS/Lambda',
        MetricName: 'Throttles',
        Dimensions: [{ Name: 'FunctionName', Value: { Ref: logicalIdOf(stack.replicate) } }],
        Period: 300,
        ComparisonOperator: 'GreaterThanThreshold',
        Threshold: 0,
      });
    });

    it('alarms when an asset has waited 12 hours in the work queue', () => {
      expect(extraAlarm(extra.operations.queueAgeAlarm)).toMatchObject({
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateAgeOfOldestMessage',
        Dimensions: [
          {
            Name: 'QueueName',
            Value: { 'Fn::GetAtt': [logicalIdOf(stack.work.queue), 'QueueName'] },
          },
        ],
        ComparisonOperator: 'GreaterThanThreshold',
        Threshold: 12 * 3600,
      });
    });
  });

  it('alarms when no run has finished (listed and every copy settled) for 36 hours, silence included', () => {
    const props = alarmNamed(stack.operations.staleRunAlarm).Properties as Json;
    expect(props).toMatchObject({
      Namespace: 'CloudinaryS3Replicator',
      MetricName: CUSTOM_METRICS.runsCompleted,
      Dimensions: [{ Name: 'service', Value: 'cloudinary-s3-replicator' }],
      Statistic: 'Sum',
      ComparisonOperator: 'LessThanThreshold',
      Threshold: 1,
      TreatMissingData: 'breaching',
    });
    const period = props.Period as number;
    const periods = props.EvaluationPeriods as number;
    expect(period * periods).toBe(36 * 3600);
    expect(props.DatapointsToAlarm).toBe(periods);
    // CloudWatch: at most 7 days of evaluation, and at most 1 day when the period is under an hour.
    expect(period * periods).toBeLessThanOrEqual(7 * 24 * 3600);
    expect(period).toBeGreaterThanOrEqual(3600);
  });

  it('sends every alarm and its recovery to the alarm topic, over TLS only', () => {
    const alarms = ofType('AWS::CloudWatch::Alarm');
    expect(alarms).toHaveLength(3);
    for (const [, alarm] of alarms) {
      expect(alarm.Properties?.AlarmActions).toEqual([topicRef()]);
      expect(alarm.Properties?.OKActions).toEqual([topicRef()]);
    }
    expectResource(template, 'AWS::SNS::TopicPolicy', {
      Topics: [topicRef()],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
    expect(ofType('AWS::SNS::Subscription')).toEqual([]);
  });

  it('leaves the dashboard out when asked, keeping every alarm', () => {
    const plain = new App({ context: SKIP_BUNDLING });
    const lean = buildReplicatorApp(
      plain,
      readConfig({ context: { 'replicator:dashboard': 'false' }, env: {} }),
    );
    const leanTemplate = Template.fromStack(lean).toJSON() as {
      Resources: Record<string, CfnResource>;
      Outputs: Record<string, unknown>;
    };
    const types = Object.values(leanTemplate.Resources).map((r) => r.Type);
    expect(types).not.toContain('AWS::CloudWatch::Dashboard');
    expect(types.filter((t) => t === 'AWS::CloudWatch::Alarm')).toHaveLength(3);
    expect(leanTemplate.Outputs).not.toHaveProperty('DashboardUrl');
  });

  it('shows the run counters, bytes, Admin API budget, queue depths and Lambda health on a dashboard', () => {
    const [, dashboard] = only('AWS::CloudWatch::Dashboard');
    const body = flattenReference(dashboard.Properties?.DashboardBody);
    for (const metric of Object.values(CUSTOM_METRICS)) {
      expect(body).toContain(`"CloudinaryS3Replicator","${metric}","service","cloudinary-s3-replicator"`);
    }
    for (const metric of ['ApproximateNumberOfMessagesVisible', 'ApproximateNumberOfMessagesNotVisible']) {
      expect(body).toContain(
        `"AWS/SQS","${metric}","QueueName","<${logicalIdOf(stack.work.queue)}.QueueName>"`,
      );
    }
    expect(body).toContain(
      `"AWS/SQS","ApproximateNumberOfMessagesVisible","QueueName","<${logicalIdOf(stack.work.deadLetterQueue)}.QueueName>"`,
    );
    for (const fn of [stack.enumerate, stack.replicate]) {
      for (const metric of ['Errors', 'Duration', 'Throttles']) {
        expect(body).toContain(`"AWS/Lambda","${metric}","FunctionName","<${logicalIdOf(fn)}>"`);
      }
    }
  });

  it('outputs what the CLI needs to find every resource', () => {
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(Object.keys(outputs).sort()).toEqual(
      [
        'AlarmTopicArn',
        'BucketName',
        'DashboardUrl',
        'DlqUrl',
        'EnumerateFunctionName',
        'OperatorPolicyArn',
        'QueueUrl',
        'CloudinaryParameterName',
        'TableName',
      ].sort(),
    );
    expect(outputs.BucketName?.Value).toEqual({ Ref: logicalIdOf(stack.backup.bucket) });
    expect(outputs.TableName?.Value).toEqual({ Ref: logicalIdOf(stack.state.table) });
    expect(outputs.QueueUrl?.Value).toEqual({ Ref: logicalIdOf(stack.work.queue) });
    expect(outputs.DlqUrl?.Value).toEqual({ Ref: logicalIdOf(stack.work.deadLetterQueue) });
    expect(outputs.CloudinaryParameterName?.Value).toBe('/CloudinaryS3Replicator/CLOUDINARY_URL');
    expect(outputs).not.toHaveProperty('SecretArn');
    expect(outputs.EnumerateFunctionName?.Value).toEqual({ Ref: logicalIdOf(stack.enumerate) });
    expect(outputs.AlarmTopicArn?.Value).toEqual(topicRef());
    expect(flattenReference(outputs.DashboardUrl?.Value)).toBe(
      `https://<AWS::Region>.console.aws.amazon.com/cloudwatch/home?region=<AWS::Region>#dashboards:name=<${logicalIdOf(stack.operations.dashboard as Dashboard)}>`,
    );
  });
});

describe('cdk-nag (AWS Solutions)', () => {
  it('finds nothing that has not been acknowledged', () => {
    const report = new AwsSolutionsChecks(undefined, { verbose: true }).validateScope(app);
    const findings = report.violations.map(
      (v) => `${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath)}`,
    );
    expect(findings).toEqual([]);
  });

  it('acknowledges each finding narrowly, on the resource, with a written reason', () => {
    const acknowledgements: { path: string; id: string; reason: string }[] = [];
    const visit = (node: IConstruct): void => {
      for (const entry of node.node.metadata) {
        if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
        for (const [id, reason] of Object.entries(entry.data as Record<string, string>)) {
          acknowledgements.push({ path: node.node.path, id: id.replace(/^annotation::/iu, ''), reason });
        }
      }
      node.node.children.forEach(visit);
    };
    visit(app);
    const bucketId = logicalIdOf(stack.backup.bucket);
    const ids = acknowledgements.map((a) => a.id);
    expect(ids).toHaveLength(8);
    expect(ids).toEqual(
      expect.arrayContaining([
        `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/assets/*]`,
        `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/manifests/*]`,
        expect.stringMatching(/^AwsSolutions-IAM5\[Resource::arn:.*:schedule\/.*ContinuationGroup.*\/\*\]$/u),
        `AwsSolutions-IAM5[Resource::<${logicalIdOf(stack.enumerate)}.Arn>:*]`,
        'AwsSolutions-S1',
        'AwsSolutions-SNS2',
      ]),
    );
    // Node.js 24 is Lambda's newest Node runtime: AwsSolutions-L1 holds without an acknowledgement.
    expect(ids).not.toContain('AwsSolutions-L1');
    for (const { path, id, reason } of acknowledgements) {
      // Never on the stack or a whole construct: on the CloudFormation resource or the policy itself.
      expect({ id, path, reason }).toEqual({
        id,
        path: expect.stringMatching(/\/(Resource|DefaultPolicy)$/u),
        reason: expect.stringMatching(/^.{60,}$/u),
      });
    }
  });

  it('stops the synth of the app on a finding nobody acknowledged', () => {
    const probe = new App({ context: SKIP_BUNDLING });
    const probeStack = buildReplicatorApp(probe, readConfig({ context: {}, env: {} }));
    new Bucket(probeStack, 'CarelessBucket');
    expect(() => probe.synth()).toThrow(/CarelessBucket[\s\S]*AwsSolutions-S10/u);
  });
});

describe('template', () => {
  it('matches the reviewed snapshot (asset hashes aside)', () => {
    const normalised = JSON.parse(
      JSON.stringify(template.toJSON()).replace(/[0-9a-f]{64}/gu, '[asset-hash]'),
    ) as unknown;
    expect(normalised).toMatchSnapshot();
  });
});

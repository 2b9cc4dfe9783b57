import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { readConfig } from '../infra/config.js';
import { flattenReference } from '../infra/nag.js';
import { buildReplicatorApp } from '../infra/replicatorApp.js';
import type { ReplicatorStack } from '../infra/ReplicatorStack.js';

// Template assertions do not need the Lambda bundles; test/infraSynth.test.ts bundles through the CLI.
const SKIP_BUNDLING = { 'aws:cdk:bundling-stacks': [] };

type Json = Record<string, unknown>;
interface Synthesized {
  app: App;
  stack: ReplicatorStack;
  template: Template;
  resources: Record<string, { Type: string; Properties?: Json; DeletionPolicy?: string }>;
}

/** Asserts that the template holds a `type` resource whose properties match `props` (objectLike). */
function expectResource(t: Template, type: string, props: unknown): void {
  t.hasResourceProperties(type, props);
}

function synth(env: Record<string, string>, context: Record<string, unknown> = {}): Synthesized {
  const app = new App({ context: SKIP_BUNDLING });
  const stack = buildReplicatorApp(app, readConfig({ context, env }));
  const template = Template.fromStack(stack);
  return { app, stack, template, resources: template.toJSON().Resources as Synthesized['resources'] };
}

function logicalId(s: Synthesized, construct: { node: { defaultChild?: unknown } }): string {
  return s.stack.getLogicalId(construct.node.defaultChild as never);
}

function policiesOf(
  s: Synthesized,
): { roles: string[]; statements: { Action: unknown; Resource: unknown }[] }[] {
  return Object.values(s.resources)
    .filter((r) => r.Type === 'AWS::IAM::Policy')
    .map((r) => ({
      roles: (r.Properties?.Roles as { Ref: string }[]).map((role) => role.Ref),
      statements: (r.Properties?.PolicyDocument as { Statement: { Action: unknown; Resource: unknown }[] })
        .Statement,
    }));
}

function functionRoleIds(s: Synthesized): string[] {
  return [s.stack.enumerate, s.stack.replicate].map((fn) => logicalId(s, fn.executionRole)).sort();
}

describe('a hardened deployment: KMS, Object Lock, an existing secret by name, e-mail alarms', () => {
  let s: Synthesized;
  beforeAll(() => {
    s = synth(
      {
        REPLICATOR_BUCKET_ENCRYPTION: 'kms',
        REPLICATOR_OBJECT_LOCK_DAYS: '30',
        REPLICATOR_ARCHIVE_STORAGE_CLASS: 'DEEP_ARCHIVE',
        REPLICATOR_NONCURRENT_EXPIRE_AFTER_DAYS: '400',
        REPLICATOR_CLOUDINARY_SECRET: 'prod/cloudinary',
        REPLICATOR_ALARM_EMAIL: 'ops@example.com',
      },
      {
        'replicator:scheduleExpression': 'cron(30 1 ? * MON-FRI *)',
        'replicator:scheduleTimeZone': 'Europe/Paris',
        'replicator:scheduleEnabled': false,
        'replicator:maxReceives': 3,
        'replicator:workerTimeoutSeconds': 600,
        'replicator:workerBatchSize': 10,
        'replicator:workerMaxConcurrency': 20,
      },
    );
  });

  it('encrypts the bucket with a rotating customer managed key that outlives the stack', () => {
    const keyId = logicalId(s, s.stack.backup.key as never);
    expect(s.resources[keyId]).toMatchObject({
      Type: 'AWS::KMS::Key',
      Properties: { EnableKeyRotation: true },
      DeletionPolicy: 'Retain',
    });
    expectResource(s.template, 'AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          {
            BucketKeyEnabled: true,
            ServerSideEncryptionByDefault: {
              SSEAlgorithm: 'aws:kms',
              KMSMasterKeyID: { 'Fn::GetAtt': [keyId, 'Arn'] },
            },
          },
        ],
      },
    });
  });

  it('lets the functions use the key to write and read their objects, and nothing more', () => {
    const keyArn = JSON.stringify({ 'Fn::GetAtt': [logicalId(s, s.stack.backup.key as never), 'Arn'] });
    const keyUsers = policiesOf(s).filter((p) =>
      p.statements.some((st) => JSON.stringify(st.Resource) === keyArn),
    );
    expect(keyUsers.flatMap((p) => p.roles).sort()).toEqual(functionRoleIds(s));
    for (const policy of keyUsers) {
      const onKey = policy.statements.filter((st) => JSON.stringify(st.Resource) === keyArn);
      expect(onKey.flatMap((st) => st.Action as string[]).sort()).toEqual([
        'kms:Decrypt',
        'kms:GenerateDataKey',
      ]);
    }
  });

  it('locks every new version in governance mode for 30 days', () => {
    expectResource(s.template, 'AWS::S3::Bucket', {
      ObjectLockEnabled: true,
      ObjectLockConfiguration: {
        ObjectLockEnabled: 'Enabled',
        Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 30 } },
      },
    });
  });

  it('archives to Deep Archive and expires replaced versions after 400 days', () => {
    const bucket = Object.values(s.resources).find((r) => r.Type === 'AWS::S3::Bucket');
    const rules = (bucket?.Properties?.LifecycleConfiguration as { Rules: Json[] }).Rules;
    expect(rules.find((r) => r.Prefix === 'assets/')).toMatchObject({
      Transitions: [{ StorageClass: 'DEEP_ARCHIVE', TransitionInDays: 7 }],
      NoncurrentVersionTransitions: [{ StorageClass: 'DEEP_ARCHIVE', TransitionInDays: 7 }],
      NoncurrentVersionExpiration: { NoncurrentDays: 400 },
    });
  });

  it('reads the existing secret by name, lets only the two functions read it, and creates none', () => {
    expect(Object.values(s.resources).filter((r) => r.Type === 'AWS::SecretsManager::Secret')).toEqual([]);
    const pattern =
      'arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:prod/cloudinary-??????';
    const readers = policiesOf(s).filter((p) =>
      p.statements.some((st) => flattenReference(st.Resource) === pattern),
    );
    expect(readers.flatMap((p) => p.roles).sort()).toEqual(functionRoleIds(s));
    for (const fn of [s.stack.enumerate, s.stack.replicate]) {
      const env = (s.resources[logicalId(s, fn)]?.Properties?.Environment as { Variables: Json }).Variables;
      expect(flattenReference(env.CLOUDINARY_SECRET_ID)).toBe(
        'arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:prod/cloudinary',
      );
    }
  });

  it('e-mails the alarms to the address given', () => {
    expectResource(s.template, 'AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.com',
      TopicArn: { Ref: logicalId(s, s.stack.operations.topic) },
    });
  });

  it('follows the schedule, time zone and pause switch it was given', () => {
    expectResource(s.template, 'AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(30 1 ? * MON-FRI *)',
      ScheduleExpressionTimezone: 'Europe/Paris',
      State: 'DISABLED',
    });
  });

  it('sizes the queue and the event source from the worker settings', () => {
    expectResource(s.template, 'AWS::Lambda::Function', { Timeout: 600, Runtime: 'nodejs24.x' });
    expectResource(s.template, 'AWS::SQS::Queue', {
      VisibilityTimeout: 3600,
      RedrivePolicy: { maxReceiveCount: 4 },
    });
    expectResource(s.template, 'AWS::Lambda::EventSourceMapping', {
      BatchSize: 10,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 20 },
    });
  });

  it('still passes every AWS Solutions check', () => {
    expect(new AwsSolutionsChecks().validateScope(s.app).violations).toEqual([]);
  });
});

describe('an existing secret given by ARN', () => {
  it('is granted by its exact ARN when the ARN is complete', () => {
    const arn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:cloudinary-AbC123';
    const s = synth({ REPLICATOR_CLOUDINARY_SECRET: arn });
    const readers = policiesOf(s).filter((p) => p.statements.some((st) => st.Resource === arn));
    expect(readers.flatMap((p) => p.roles).sort()).toEqual(functionRoleIds(s));
    expect(JSON.stringify(s.template.toJSON())).not.toContain('??????');
    expect(new AwsSolutionsChecks().validateScope(s.app).violations).toEqual([]);
  });

  it('matches the unknown suffix of a partial ARN, with the wildcard acknowledged', () => {
    const arn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:cloudinary';
    const s = synth({ REPLICATOR_CLOUDINARY_SECRET: arn });
    const readers = policiesOf(s).filter((p) => p.statements.some((st) => st.Resource === `${arn}-??????`));
    expect(readers.flatMap((p) => p.roles).sort()).toEqual(functionRoleIds(s));
    expect(new AwsSolutionsChecks().validateScope(s.app).violations).toEqual([]);
  });
});

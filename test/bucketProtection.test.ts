import { runSimulation } from '@cloud-copilot/iam-simulate';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { readConfig } from '../infra/config.js';
import { HISTORY_ERASING_ACTIONS } from '../infra/constructs/index.js';
import { buildReplicatorApp } from '../infra/replicatorApp.js';
import { grantedActions } from './support/iam/evaluate.js';
import {
  deployOnto,
  functionRoles,
  resourcePolicies,
  rolePolicies,
  type CfnTemplate,
  type PolicyDocument,
} from './support/iam/templatePolicies.js';

const WHERE = { accountId: '123456789012', region: 'eu-west-1' };
const BUCKET = 'my-cloudinary-backup';
const BREAK_GLASS = 'arn:aws:iam::123456789012:role/backup-break-glass';
const ADMIN_POLICY: PolicyDocument = {
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }],
};

function deployedStack(context: Record<string, string> = {}) {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = buildReplicatorApp(app, readConfig({ context, env: {} }));
  const template = Template.fromStack(stack).toJSON() as CfnTemplate;
  const deployed = deployOnto(
    template,
    {
      bucket: BUCKET,
      table: 'state',
      queueName: 'work',
      queueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/work',
      deadLetterQueueName: 'dlq',
      deadLetterQueueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/dlq',
      secretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:cloudinary-AbCdEf',
    },
    WHERE,
  );
  return {
    template,
    deployed,
    bucketPolicy: resourcePolicies(template, deployed, WHERE).get(`arn:aws:s3:::${BUCKET}`),
  };
}

async function decide(
  principal: string,
  policies: PolicyDocument[],
  action: string,
  resource: string,
  bucketPolicy: PolicyDocument | undefined,
): Promise<string> {
  const answer = await runSimulation(
    {
      identityPolicies: policies.map((policy, i) => ({ name: `p${i}`, policy })),
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      resourcePolicy: bucketPolicy,
      request: {
        action,
        principal,
        resource: { accountId: WHERE.accountId, resource },
        contextVariables: {
          'aws:SecureTransport': 'true',
          'aws:PrincipalArn': principal,
          'aws:PrincipalAccount': WHERE.accountId,
          's3:TlsVersion': '1.3',
        },
      },
    },
    {},
  );
  if (answer.resultType === 'error') throw new Error(JSON.stringify(answer.errors));
  return answer.overallResult;
}

const onResource = (action: string) =>
  ['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:BypassGovernanceRetention'].includes(action)
    ? `arn:aws:s3:::${BUCKET}/assets/image/upload/holiday.jpg`
    : `arn:aws:s3:::${BUCKET}`;

describe('one leaked key or one mistake cannot erase the backup', () => {
  it('locks every new version for 30 days in governance mode by default', () => {
    const { template } = deployedStack();
    const bucket = Object.values(template.Resources).find((r) => r.Type === 'AWS::S3::Bucket');
    expect(bucket?.Properties?.ObjectLockEnabled).toBe(true);
    expect(bucket?.Properties?.ObjectLockConfiguration).toEqual({
      ObjectLockEnabled: 'Enabled',
      Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 30 } },
    });
  });

  it('gives the replicator roles no action that deletes or unprotects anything', async () => {
    const { template, deployed, bucketPolicy } = deployedStack();
    const policies = rolePolicies(template, deployed, WHERE);
    for (const [fn, role] of functionRoles(template)) {
      const granted = [...grantedActions({ roleArn: '', policies: policies.get(role) ?? [] })];
      expect(
        granted.filter((a) => /^s3:(Delete|Bypass|PutBucket|PutLifecycle)/u.test(a)),
        fn,
      ).toEqual([]);
      for (const action of HISTORY_ERASING_ACTIONS) {
        const roleArn = deployed[role]?.attrs.Arn ?? '';
        expect(
          await decide(roleArn, policies.get(role) ?? [], action, onResource(action), bucketPolicy),
        ).not.toBe('Allowed');
      }
    }
  });

  it('denies an administrator of the account every history-erasing action on the bucket', async () => {
    const { bucketPolicy } = deployedStack();
    const admin = 'arn:aws:iam::123456789012:role/Admin';
    for (const action of HISTORY_ERASING_ACTIONS) {
      expect(await decide(admin, [ADMIN_POLICY], action, onResource(action), bucketPolicy), action).toBe(
        'ExplicitlyDenied',
      );
    }
    // Reading and writing stay with IAM: the protection targets erasure only.
    expect(
      await decide(admin, [ADMIN_POLICY], 's3:GetObject', onResource('s3:DeleteObject'), bucketPolicy),
    ).toBe('Allowed');
  });

  it('lets the break-glass role, and CloudFormation deploys, do what the owner decides on purpose', async () => {
    const { bucketPolicy } = deployedStack({ 'replicator:breakGlassRoleArn': BREAK_GLASS });
    const deployRole = 'arn:aws:iam::123456789012:role/cdk-hnb659fds-cfn-exec-role-123456789012-eu-west-1';
    for (const action of HISTORY_ERASING_ACTIONS) {
      expect(
        await decide(BREAK_GLASS, [ADMIN_POLICY], action, onResource(action), bucketPolicy),
        action,
      ).toBe('Allowed');
    }
    expect(
      await decide(
        deployRole,
        [ADMIN_POLICY],
        's3:PutLifecycleConfiguration',
        `arn:aws:s3:::${BUCKET}`,
        bucketPolicy,
      ),
    ).toBe('Allowed');
  });

  it('refuses a break-glass setting that is not an IAM role ARN, saying what it needs', () => {
    expect(() => readConfig({ context: { 'replicator:breakGlassRoleArn': 'admin' }, env: {} })).toThrow(
      /breakGlassRoleArn[\s\S]*IAM role ARN/u,
    );
  });
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CloudFormationClient,
  CreateStackCommand,
  DescribeStacksCommand,
} from '@aws-sdk/client-cloudformation';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replicateMain } from '../shared/cli/replicate.js';
import { runNowMain } from '../shared/cli/runNow.js';
import { webhookMain } from '../shared/cli/webhook.js';
import { pullMain } from '../shared/cli/pull.js';
import { restoreMain } from '../shared/cli/restore.js';
import { generateLibrary, startCloudinaryDouble, type CloudinaryDouble } from './double/index.js';
import { describeCall, type AwsCall } from './support/iam/awsOperations.js';
import { captureStreams } from './support/backupBed.js';
import { DeployedStack, WHERE } from './support/iam/deployedRun.js';
import { describeDenials, evaluateCalls, grantedActions, type Evaluation } from './support/iam/evaluate.js';
import { managedPolicies, type PolicyDocument } from './support/iam/templatePolicies.js';

const OPERATOR = 'arn:aws:iam::123456789012:user/operator';

/**
 * Granted to the operator for a path this run cannot take (moto applies no lifecycle rule, and the
 * default listing announces every MD5); the same reasons are next to the grants in
 * infra/constructs/OperatorPolicy.ts.
 */
const NEEDED_ON_PATHS_NOT_TAKEN = new Set([
  's3:RestoreObject', // pull thaws assets the lifecycle rule moved to Glacier Flexible or Deep Archive
  's3:PutObjectVersionTagging', // replicate with LISTING_API=resources tags the MD5 it computed
  's3:AbortMultipartUpload', // a failed multipart upload of a large asset or manifest is aborted
  's3:GetObjectTagging', // pull reads the MD5 tag of objects copied with LISTING_API=resources
  's3:ListBucketMultipartUploads', // replicate aborts what a dead copy of a large asset left open
  's3:ListMultipartUploadParts', // replicate checks an interrupted copy's recorded parts before continuing it
  's3:GetObjectVersion', // replicate copies a renamed asset from its old id's version (test/iam-contract.test.ts renames one)
  'dynamodb:DeleteItem', // replicate drops the checkpoint of a copy of a large asset once it is recorded (test/iam-contract.test.ts copies one)
]);

describe('the workstation commands are allowed by the operator policy the README tells users to attach', () => {
  let stack: DeployedStack;
  let double: CloudinaryDouble;
  let calls: AwsCall[];
  let evaluation: Evaluation;
  let policy: PolicyDocument;
  let dest: string;
  let name: string;
  const codes: Record<string, number> = {};

  beforeAll(async () => {
    double = await startCloudinaryDouble({
      library: generateLibrary({
        seed: 'operator',
        counts: { image: { upload: 12, private: 3 }, raw: { upload: 3 } },
      }),
    });
    // One download cut short: the workstation worker delays its retry (ChangeMessageVisibility).
    const first = double.library.all()[0];
    double.faults.add({
      route: ['delivery', 'download'],
      publicId: first?.public_id ?? '',
      kind: 'short',
      afterBytes: 100,
      times: 1,
    });
    stack = await DeployedStack.create(
      double,
      {},
      { POWERTOOLS_LOG_LEVEL: 'ERROR', RETRY_BASE_SECONDS: '0' },
    );
    // The stack's outputs, as the deployed stack has them, in a CloudFormation stack on moto.
    name = `ops-${stack.resources.bucket}`;
    const cfn = new CloudFormationClient({ endpoint: stack.proxy.endpoint, region: WHERE.region });
    const outputs = {
      BucketName: stack.resources.bucket,
      TableName: stack.resources.table,
      QueueUrl: stack.resources.queueUrl,
      DlqUrl: stack.resources.dlqUrl,
      CloudinaryParameterName: stack.parameterName,
      EnumerateFunctionName: stack.functionIds.enumerate,
      WebhookUrl: 'https://hooks.lambda-url.us-east-1.on.aws/',
    };
    await cfn.send(
      new CreateStackCommand({
        StackName: name,
        TemplateBody: JSON.stringify({
          Resources: { Handle: { Type: 'AWS::CloudFormation::WaitConditionHandle' } },
          Outputs: Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, { Value: v }])),
        }),
      }),
    );
    const stackId =
      (await cfn.send(new DescribeStacksCommand({ StackName: name }))).Stacks?.[0]?.StackId ?? '';
    dest = mkdtempSync(join(tmpdir(), 'operator-pull-'));

    await stack.asOperator(async () => {
      codes.replicate = await replicateMain(['--stack', name], captureStreams().streams);
      codes.pull = await pullMain(['--stack', name, '--dest', dest], captureStreams().streams);
      // Restore reads manifests, heads and object versions as they stood (--as-of) and puts a deleted asset back.
      const gone = double.library.all().at(-1);
      if (gone) double.library.delete(gone.resource_type, gone.type, gone.public_id);
      codes.restore = await restoreMain(
        [
          '--stack',
          name,
          '--as-of',
          new Date(Date.now() + 60_000).toISOString(),
          '--journal',
          join(dest, 'restore.jsonl'),
        ],
        captureStreams().streams,
        { ...process.env, CLOUDINARY_URL: double.cloudinaryUrl },
      );
      // moto runs no Lambda function: the request is what matters here, not its answer.
      codes.runNow = await runNowMain(['--stack', name], captureStreams().streams);
      // Reads the WebhookUrl output and CLOUDINARY_URL from the stack's parameter, then calls Cloudinary.
      codes.webhook = await webhookMain(['--register', '--stack', name], captureStreams().streams);
    });

    calls = stack.proxy.requests
      .filter((r) => r.principal === 'operator')
      .map((r) => describeCall(r, { accountId: WHERE.accountId, stackArns: { [name]: stackId } }));
    const where = { ...WHERE, stackId };
    const operatorPolicy = [...managedPolicies(stack.template, stack.deployed, where).entries()].find(
      ([id]) => id.startsWith('Operator'),
    );
    policy = operatorPolicy?.[1] as PolicyDocument;
    evaluation = await evaluateCalls(
      calls,
      new Map([['operator', { roleArn: OPERATOR, policies: [policy] }]]),
      stack.resourcePolicies(),
      WHERE.accountId,
    );
  }, 300_000);
  afterAll(async () => {
    await stack?.close();
    await double?.close();
    if (dest) rmSync(dest, { recursive: true, force: true });
  });

  it('runs replicate, pull and restore to the end, run-now sends its start, and webhook registers the stack URL', () => {
    expect(codes.replicate).toBe(0);
    expect(codes.pull).toBe(0);
    expect(codes.restore).toBe(0);
    expect(codes.webhook).toBe(0);
    const operations = new Set(calls.map((c) => c.operation));
    for (const op of [
      'DescribeStacks',
      'GetParameter',
      'SendMessageBatch',
      'ReceiveMessage',
      'Invoke',
      'GetObject',
      'ListObjectVersions',
    ]) {
      expect(operations, op).toContain(op);
    }
  });

  it('allows every request the four commands made', () => {
    expect(describeDenials(evaluation.denials)).toBe('');
  });

  it('grants nothing the commands do not use', () => {
    const used = evaluation.exercised.get('operator') ?? new Set<string>();
    const unused = [...grantedActions({ roleArn: OPERATOR, policies: [policy] })]
      .filter((a) => !used.has(a) && !NEEDED_ON_PATHS_NOT_TAKEN.has(a))
      .sort();
    expect(unused).toEqual([]);
  });
});

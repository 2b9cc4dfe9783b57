import { randomUUID } from 'node:crypto';
import { CreateTableCommand, type CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import {
  CreateBucketCommand,
  PutBucketVersioningCommand,
  PutObjectLockConfigurationCommand,
  type ObjectLockConfiguration,
} from '@aws-sdk/client-s3';
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager';
import { PutParameterCommand } from '@aws-sdk/client-ssm';
import { CreateQueueCommand, GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import type { AwsClients } from '../../shared/aws/clients.js';
import type { CloudAssembly } from './cloudAssembly.js';
import { ensureScheduleGroup, provisionWorkerMapping } from './eventSources.js';
import { resolveIntrinsics, type BoundResource, type ResolveContext } from './templateIntrinsics.js';

export const REGION = 'us-east-1';
/** moto's default account. */
export const ACCOUNT_ID = '123456789012';

export interface TemplateBed {
  ctx: ResolveContext;
  /** The test bed's resource for a logical id of the template. */
  resource(logicalId: string): BoundResource;
  /** Logical ids of the template's resources of `type`. */
  logicalIds(type: string): string[];
}

type Props = Record<string, unknown>;

/**
 * Creates in moto what the template declares (buckets, tables, queues, secrets, schedule groups),
 * from the template's own properties, under unique names; roles and functions get the ARNs
 * CloudFormation would give them. Each secret, and the SSM parameter the functions read, holds
 * `secretValue`.
 */
export async function provisionTemplate(
  assembly: CloudAssembly,
  clients: AwsClients,
  secretValue: string,
): Promise<TemplateBed> {
  const tag = `deployed-${randomUUID().slice(0, 8)}`;
  const resources = new Map<string, BoundResource>();
  const ctx: ResolveContext = {
    region: REGION,
    accountId: ACCOUNT_ID,
    stackName: assembly.stackName,
    resources,
  };
  const entries = Object.entries(assembly.template.Resources);
  const ofType = (type: string) => entries.filter(([, r]) => r.Type === type);
  const nameFor = (logicalId: string) => `${tag}-${logicalId.toLowerCase()}`.slice(0, 63);

  for (const [id, r] of ofType('AWS::S3::Bucket')) {
    const props = (r.Properties ?? {}) as Props;
    const bucket = nameFor(id);
    const objectLock = props.ObjectLockEnabled === true;
    await clients.s3.send(
      new CreateBucketCommand({ Bucket: bucket, ObjectLockEnabledForBucket: objectLock }),
    );
    const versioning = props.VersioningConfiguration as { Status?: string } | undefined;
    if (versioning?.Status === 'Enabled' || objectLock) {
      await clients.s3.send(
        new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }),
      );
    }
    const lock = props.ObjectLockConfiguration as ObjectLockConfiguration | undefined;
    if (objectLock && lock?.Rule) {
      await clients.s3.send(
        new PutObjectLockConfigurationCommand({ Bucket: bucket, ObjectLockConfiguration: lock }),
      );
    }
    resources.set(id, { ref: bucket, attributes: { Arn: `arn:aws:s3:::${bucket}` } });
  }

  for (const [id, r] of ofType('AWS::DynamoDB::Table')) {
    const props = (r.Properties ?? {}) as Props;
    const table = nameFor(id);
    await clients.dynamo.send(
      new CreateTableCommand({
        TableName: table,
        BillingMode: (props.BillingMode as CreateTableCommandInput['BillingMode']) ?? 'PROVISIONED',
        KeySchema: props.KeySchema as CreateTableCommandInput['KeySchema'],
        AttributeDefinitions: props.AttributeDefinitions as CreateTableCommandInput['AttributeDefinitions'],
        GlobalSecondaryIndexes:
          props.GlobalSecondaryIndexes as CreateTableCommandInput['GlobalSecondaryIndexes'],
        ProvisionedThroughput:
          props.ProvisionedThroughput as CreateTableCommandInput['ProvisionedThroughput'],
      }),
    );
    resources.set(id, {
      ref: table,
      attributes: { Arn: `arn:aws:dynamodb:${REGION}:${ACCOUNT_ID}:table/${table}` },
    });
  }

  // Dead-letter queues first: a redrive policy names its target's ARN.
  const queues = ofType('AWS::SQS::Queue').sort(
    ([, a], [, b]) =>
      Number(Boolean(a.Properties?.RedrivePolicy)) - Number(Boolean(b.Properties?.RedrivePolicy)),
  );
  for (const [id, r] of queues) {
    const props = (r.Properties ?? {}) as Props;
    const attributes: Record<string, string> = {};
    for (const name of [
      'VisibilityTimeout',
      'MessageRetentionPeriod',
      'DelaySeconds',
      'ReceiveMessageWaitTimeSeconds',
    ]) {
      if (props[name] !== undefined) attributes[name] = String(props[name]);
    }
    if (props.RedrivePolicy) {
      attributes.RedrivePolicy = JSON.stringify(
        resolveIntrinsics(props.RedrivePolicy, ctx, `${id} RedrivePolicy`),
      );
    }
    const created = await clients.sqs.send(
      new CreateQueueCommand({ QueueName: nameFor(id), Attributes: attributes }),
    );
    const url = created.QueueUrl ?? '';
    const attrs = await clients.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }),
    );
    resources.set(id, {
      ref: url,
      attributes: { Arn: attrs.Attributes?.QueueArn ?? '', QueueName: nameFor(id), QueueUrl: url },
    });
  }

  // The SSM SecureString a function reads CLOUDINARY_URL from is created by hand after a deploy
  // (CloudFormation cannot create SecureStrings): here, once per name the template passes.
  const parameters = new Set(
    ofType('AWS::Lambda::Function')
      .map(
        ([, r]) =>
          (r.Properties?.Environment as { Variables?: Props } | undefined)?.Variables?.CLOUDINARY_PARAMETER,
      )
      .filter((name): name is string => typeof name === 'string'),
  );
  for (const name of parameters) {
    await clients.ssm.send(
      new PutParameterCommand({ Name: name, Type: 'SecureString', Value: secretValue, Overwrite: true }),
    );
    resources.set(`Parameter${name}`, { ref: name, attributes: {} });
  }

  for (const [id] of ofType('AWS::SecretsManager::Secret')) {
    const created = await clients.secrets.send(
      new CreateSecretCommand({ Name: nameFor(id), SecretString: secretValue }),
    );
    resources.set(id, { ref: created.ARN ?? '', attributes: {} });
  }

  for (const [id, r] of ofType('AWS::Scheduler::ScheduleGroup')) {
    const name = String(r.Properties?.Name ?? nameFor(id));
    await ensureScheduleGroup(name);
    const arn = `arn:aws:scheduler:${REGION}:${ACCOUNT_ID}:schedule-group/${name}`;
    resources.set(id, { ref: name, attributes: { Arn: arn } });
  }

  // The worker switch calls Lambda's API on the mapping: it exists on moto, in the template's state.
  for (const [id, r] of ofType('AWS::Lambda::EventSourceMapping')) {
    const mapping = await provisionWorkerMapping(process.env.AWS_ENDPOINT_URL ?? '', {
      name: nameFor(id),
      enabled: r.Properties?.Enabled !== false,
      batchSize: Number(r.Properties?.BatchSize ?? 10),
    });
    resources.set(id, { ref: mapping.uuid, attributes: { EventSourceMappingArn: mapping.arn } });
  }

  for (const [id] of ofType('AWS::IAM::Role')) {
    const name = `${assembly.stackName}-${id}`.slice(0, 64);
    resources.set(id, { ref: name, attributes: { Arn: `arn:aws:iam::${ACCOUNT_ID}:role/${name}` } });
  }

  for (const [id] of ofType('AWS::Lambda::Function')) {
    const name = `${assembly.stackName}-${id}`.slice(0, 64);
    resources.set(id, {
      ref: name,
      attributes: { Arn: `arn:aws:lambda:${REGION}:${ACCOUNT_ID}:function:${name}` },
    });
  }

  return {
    ctx,
    resource(logicalId) {
      const found = resources.get(logicalId);
      if (!found) throw new Error(`the test bed has no resource for ${logicalId}`);
      return found;
    },
    logicalIds(type) {
      return ofType(type).map(([id]) => id);
    },
  };
}

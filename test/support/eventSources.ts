import { DeleteMessageBatchCommand, ReceiveMessageCommand, type Message } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { sqsEventFromMessages } from '../../shared/aws/SqsWorkQueue.js';
import type { AwsClients } from '../../shared/aws/clients.js';
import type { Template } from './cloudAssembly.js';
import { resolveIntrinsics, type ResolveContext } from './templateIntrinsics.js';

/** A schedule of the template that invokes a function: its target ARN and its input as an event. */
export interface ScheduleTrigger {
  logicalId: string;
  functionArn: string;
  roleArn: string;
  event: unknown;
}

/** An SQS event source mapping of the template: the function it feeds and how. */
export interface QueueTrigger {
  functionLogicalId: string;
  queueArn: string;
  queueUrl: string;
  batchSize: number;
  reportBatchItemFailures: boolean;
  /** The mapping on the test bed (moto), whose enabled state `pollBatch` respects. */
  mappingId?: string;
}

export function scheduleTriggers(template: Template, ctx: ResolveContext): ScheduleTrigger[] {
  return Object.entries(template.Resources)
    .filter(([, r]) => r.Type === 'AWS::Scheduler::Schedule')
    .map(([logicalId, r]) => {
      const target = resolveIntrinsics(r.Properties?.Target, ctx, `${logicalId} Target`) as {
        Arn: string;
        RoleArn: string;
        Input?: string;
      };
      // The Scheduler passes Input verbatim as the invocation's payload.
      return {
        logicalId,
        functionArn: target.Arn,
        roleArn: target.RoleArn,
        event: JSON.parse(target.Input ?? '{}'),
      };
    });
}

export function queueTriggers(template: Template, ctx: ResolveContext): QueueTrigger[] {
  const byArn = new Map<string, string>();
  for (const [id, bound] of ctx.resources) {
    if (template.Resources[id]?.Type === 'AWS::SQS::Queue' && bound.attributes.Arn) {
      byArn.set(bound.attributes.Arn, bound.ref);
    }
  }
  return Object.entries(template.Resources)
    .filter(([, r]) => r.Type === 'AWS::Lambda::EventSourceMapping')
    .map(([logicalId, r]) => {
      const props = r.Properties as {
        FunctionName: { Ref: string };
        EventSourceArn: unknown;
        BatchSize?: number;
        FunctionResponseTypes?: string[];
      };
      const queueArn = String(resolveIntrinsics(props.EventSourceArn, ctx, `${logicalId} EventSourceArn`));
      const queueUrl = byArn.get(queueArn);
      if (!queueUrl) throw new Error(`${logicalId} reads ${queueArn}, which is not a queue of the template`);
      return {
        functionLogicalId: props.FunctionName.Ref,
        queueArn,
        queueUrl,
        // SQS event sources default to 10 records per batch.
        batchSize: props.BatchSize ?? 10,
        reportBatchItemFailures: (props.FunctionResponseTypes ?? []).includes('ReportBatchItemFailures'),
        mappingId: ctx.resources.get(logicalId)?.ref,
      };
    });
}

/**
 * One poll of the event source mapping: a real ReceiveMessage, every attribute, no long poll; none
 * while the mapping is disabled (messages wait in the queue, as on AWS).
 */
export async function pollBatch(
  clients: AwsClients,
  trigger: QueueTrigger,
): Promise<{ messages: Message[]; event: SQSEvent }> {
  if (trigger.mappingId && !(await mappingEnabled(trigger.mappingId))) {
    return { messages: [], event: sqsEventFromMessages([], trigger.queueArn) };
  }
  const got = await clients.sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: trigger.queueUrl,
      MaxNumberOfMessages: Math.min(10, trigger.batchSize),
      WaitTimeSeconds: 0,
      MessageSystemAttributeNames: ['All'],
      MessageAttributeNames: ['All'],
    }),
  );
  const messages = got.Messages ?? [];
  return { messages, event: sqsEventFromMessages(messages, trigger.queueArn) };
}

/** What the mapping does with a response: deletes every record not reported as failed. */
export async function settleBatch(
  clients: AwsClients,
  trigger: QueueTrigger,
  messages: Message[],
  failedIds: string[],
): Promise<void> {
  const done = messages.filter((m) => !failedIds.includes(m.MessageId ?? ''));
  if (done.length === 0) return;
  await clients.sqs.send(
    new DeleteMessageBatchCommand({
      QueueUrl: trigger.queueUrl,
      Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
    }),
  );
}

/**
 * The replicate function's event source mapping, created on moto so the worker switch's real
 * Lambda API calls (GetEventSourceMapping, UpdateEventSourceMapping) have a mapping to act on.
 * moto invokes a mapped function through Docker when a message arrives on its queue, so this one
 * reads a stand-in queue that nothing sends to; the tests poll the real queue only while moto says
 * this mapping is enabled (see `mappingEnabled`).
 */
export async function provisionWorkerMapping(
  endpoint: string,
  options: { name: string; enabled: boolean; batchSize: number },
): Promise<{ uuid: string; arn: string }> {
  const { CreateEventSourceMappingCommand, CreateFunctionCommand, LambdaClient } =
    await import('@aws-sdk/client-lambda');
  const { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } = await import('@aws-sdk/client-sqs');
  const roleArn = await createMotoRole(endpoint, `${options.name}-role`);
  const lambda = new LambdaClient({ endpoint });
  const sqs = new SQSClient({ endpoint });
  const standIn = await sqs.send(new CreateQueueCommand({ QueueName: `${options.name}-mapped` }));
  const queueArn = (
    await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: standIn.QueueUrl, AttributeNames: ['QueueArn'] }),
    )
  ).Attributes?.QueueArn;
  await lambda.send(
    new CreateFunctionCommand({
      FunctionName: options.name,
      Runtime: 'nodejs22.x',
      Role: roleArn,
      Handler: 'index.handler',
      Code: { ZipFile: STUB_ZIP },
    }),
  );
  const mapping = await lambda.send(
    new CreateEventSourceMappingCommand({
      FunctionName: options.name,
      EventSourceArn: queueArn,
      Enabled: options.enabled,
      BatchSize: options.batchSize,
    }),
  );
  return { uuid: mapping.UUID ?? '', arn: mapping.EventSourceMappingArn ?? '' };
}

/** Whether the mapping polls now, as the worker switch left it (Enabling counts as on). */
export async function mappingEnabled(uuid: string, endpoint?: string): Promise<boolean> {
  const { GetEventSourceMappingCommand, LambdaClient } = await import('@aws-sdk/client-lambda');
  const lambda = new LambdaClient(endpoint ? { endpoint } : {});
  const mapping = await lambda.send(new GetEventSourceMappingCommand({ UUID: uuid }));
  return mapping.State === 'Enabled' || mapping.State === 'Enabling';
}

/** A role moto's Lambda accepts (it checks the role exists); IAM's query API, unsigned as moto allows. */
async function createMotoRole(endpoint: string, name: string): Promise<string> {
  const trust = JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      { Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' },
    ],
  });
  const response = await fetch(endpoint, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      // moto routes by the credential scope's service name.
      authorization:
        'AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0',
    },
    body: new URLSearchParams({
      Action: 'CreateRole',
      Version: '2010-05-08',
      RoleName: name,
      AssumeRolePolicyDocument: trust,
    }).toString(),
  });
  const text = await response.text();
  const arn = /<Arn>([^<]+)<\/Arn>/u.exec(text)?.[1];
  if (!arn) {
    if (text.includes('EntityAlreadyExists')) return `arn:aws:iam::123456789012:role/${name}`;
    throw new Error(`moto did not create the role ${name}: ${response.status} ${text.slice(0, 300)}`);
  }
  return arn;
}

/** An empty zip archive: moto stores the code and never runs it here. */
const STUB_ZIP = Uint8Array.from([0x50, 0x4b, 0x05, 0x06, ...new Array<number>(18).fill(0)]);

/**
 * Creates a schedule group unless it exists: other suites on this moto server deploy the same
 * template, and moto's CreateScheduleGroup replaces an existing group, schedules and all.
 */
export async function ensureScheduleGroup(name: string, endpoint?: string): Promise<void> {
  const { CreateScheduleGroupCommand, GetScheduleGroupCommand, SchedulerClient } =
    await import('@aws-sdk/client-scheduler');
  const scheduler = new SchedulerClient(endpoint ? { endpoint } : {});
  const exists = await scheduler.send(new GetScheduleGroupCommand({ Name: name })).then(
    () => true,
    (error: unknown) => {
      if ((error as { name?: string }).name === 'ResourceNotFoundException') return false;
      throw error;
    },
  );
  if (exists) return;
  await scheduler.send(new CreateScheduleGroupCommand({ Name: name })).catch((error: unknown) => {
    if ((error as { name?: string }).name !== 'ConflictException') throw error;
  });
}

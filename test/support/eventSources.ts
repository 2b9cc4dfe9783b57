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
      };
    });
}

/** One poll of the event source mapping: a real ReceiveMessage, every attribute, no long poll. */
export async function pollBatch(
  clients: AwsClients,
  trigger: QueueTrigger,
): Promise<{ messages: Message[]; event: SQSEvent }> {
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

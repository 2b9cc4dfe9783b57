import { randomUUID } from 'node:crypto';
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager';
import { PutParameterCommand } from '@aws-sdk/client-ssm';
import { GetScheduleCommand, SchedulerClient } from '@aws-sdk/client-scheduler';
import { DeleteMessageBatchCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { Context, LambdaFunctionURLEvent, LambdaFunctionURLResult, SQSBatchResponse } from 'aws-lambda';
import { inject } from 'vitest';
import { scheduleOnLambda, enumerateHandler, type EnumerateEvent } from '../../../functions/enumerate.js';
import { replicateHandler } from '../../../functions/replicate.js';
import { webhookHandler } from '../../../functions/webhook.js';
import { readConfig } from '../../../infra/config.js';
import { buildReplicatorApp } from '../../../infra/replicatorApp.js';
import { createAwsClients, type AwsClients } from '../../../shared/aws/clients.js';
import { sqsEventFromMessages } from '../../../shared/aws/SqsWorkQueue.js';
import type { CloudinaryDouble } from '../../double/index.js';
import { provisionAwsResources, useMotoEnvironment, type AwsResources } from '../awsTestBed.js';
import { ensureScheduleGroup, mappingEnabled, provisionWorkerMapping } from '../eventSources.js';
import { startRecordingProxy, type RecordingProxy } from './recordingProxy.js';
import {
  deployOnto,
  functionEnvironment,
  functionRoles,
  resourcePolicies,
  rolePolicies,
  type CfnTemplate,
  type Deployed,
  type PolicyDocument,
  type Where,
} from './templatePolicies.js';
import type { Principal } from './evaluate.js';

export const WHERE: Where = { accountId: '123456789012', region: 'us-east-1' };

/** The stack's functions by role; `webhook` only when the stack has it (replicator:webhooks). */
export type FunctionName = 'enumerate' | 'replicate' | 'webhook';

/** Settings a test may change from what the template sets, and why. */
export type EnvOverrides = Record<string, string>;

/**
 * The synthesized stack deployed onto moto: the template's resources mapped to test-bed
 * resources, each function's environment and role policies resolved from the template, and every
 * AWS request recorded through a proxy.
 */
export class DeployedStack {
  readonly template: CfnTemplate;
  readonly deployed: Record<string, Deployed>;
  readonly functionIds: { enumerate: string; replicate: string; webhook?: string };
  private constructor(
    readonly proxy: RecordingProxy,
    readonly resources: AwsResources,
    readonly admin: AwsClients,
    readonly secretArn: string,
    readonly parameterName: string,
    template: CfnTemplate,
    readonly overrides: EnvOverrides,
    /** The worker event source mapping on moto (UUID); the drain polls only while it is enabled. */
    readonly workerMappingId: string,
  ) {
    this.template = template;
    this.deployed = deployOnto(
      template,
      {
        bucket: resources.bucket,
        table: resources.table,
        queueName: resources.queueUrl.split('/').at(-1) ?? '',
        queueUrl: resources.queueUrl,
        deadLetterQueueName: resources.dlqUrl.split('/').at(-1) ?? '',
        deadLetterQueueUrl: resources.dlqUrl,
        secretArn,
        workerMappingId,
      },
      WHERE,
    );
    const fn = (prefix: string) => {
      const id = Object.keys(template.Resources).find(
        (k) => k.startsWith(prefix) && template.Resources[k]?.Type === 'AWS::Lambda::Function',
      );
      if (!id) throw new Error(`the template has no ${prefix} function`);
      return id;
    };
    const webhook = Object.keys(template.Resources).find(
      (k) => k.startsWith('Webhook') && template.Resources[k]?.Type === 'AWS::Lambda::Function',
    );
    this.functionIds = {
      enumerate: fn('Enumerate'),
      replicate: fn('Replicate'),
      ...(webhook ? { webhook } : {}),
    };
  }

  /** Synthesizes the stack with `context` settings and deploys it onto fresh moto resources. */
  static async create(
    double: CloudinaryDouble,
    context: Record<string, string>,
    overrides: EnvOverrides,
  ): Promise<DeployedStack> {
    // A parameter of its own: other suites on this moto server deploy the same stack.
    const parameterName = `/iam-${randomUUID().slice(0, 8)}/CLOUDINARY_URL`;
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = buildReplicatorApp(
      app,
      readConfig({ context: { 'replicator:cloudinaryParameter': parameterName, ...context }, env: {} }),
    );
    const template = Template.fromStack(stack).toJSON() as CfnTemplate;

    const moto = useMotoEnvironment(inject('motoEndpoint'));
    // Resources are created through the proxy too, so queue URLs name the proxy's host (as on AWS,
    // where a queue URL's host is the endpoint the SDK calls).
    const proxy = await startRecordingProxy(moto);
    proxy.actAs('test');
    process.env.AWS_ENDPOINT_URL = proxy.endpoint;
    const admin = createAwsClients();
    // The redrive as the template sets it (the bed adds one to maxReceives, like the stack).
    const redrive = Object.values(template.Resources).find((r) => r.Properties?.RedrivePolicy)?.Properties
      ?.RedrivePolicy as { maxReceiveCount: number } | undefined;
    const resources = await provisionAwsResources(admin, {
      prefix: 'iam',
      maxReceives: (redrive?.maxReceiveCount ?? 6) - 1,
      visibilityTimeout: 30,
    });
    const secret = await admin.secrets.send(
      new CreateSecretCommand({ Name: `iam-${resources.bucket}`, SecretString: double.cloudinaryUrl }),
    );
    // Created by hand after a deploy, as the README says (CloudFormation cannot create SecureStrings).
    await admin.ssm.send(
      new PutParameterCommand({ Name: parameterName, Type: 'SecureString', Value: double.cloudinaryUrl }),
    );
    for (const resource of Object.values(template.Resources)) {
      if (resource.Type === 'AWS::Scheduler::ScheduleGroup') {
        await ensureScheduleGroup(String(resource.Properties?.Name));
      }
    }
    const mapping = Object.values(template.Resources).find(
      (r) => r.Type === 'AWS::Lambda::EventSourceMapping',
    );
    const worker = await provisionWorkerMapping(proxy.endpoint, {
      name: `iam-${randomUUID().slice(0, 8)}-replicate`,
      enabled: mapping?.Properties?.Enabled !== false,
      batchSize: Number(mapping?.Properties?.BatchSize ?? 10),
    });
    return new DeployedStack(
      proxy,
      resources,
      admin,
      secret.ARN ?? '',
      parameterName,
      template,
      overrides,
      worker.uuid,
    );
  }

  /** The functions' principals (role ARN and resolved identity policies), by function name. */
  principals(): Map<string, Principal> {
    const policies = rolePolicies(this.template, this.deployed, WHERE);
    const roles = functionRoles(this.template);
    const principals = new Map<string, Principal>();
    for (const [name, id] of Object.entries(this.functionIds)) {
      if (id === undefined) continue;
      const role = roles.get(id) as string;
      principals.set(name, {
        roleArn: this.deployed[role]?.attrs.Arn ?? '',
        policies: policies.get(role) ?? [],
      });
    }
    return principals;
  }

  resourcePolicies(): Map<string, PolicyDocument> {
    return resourcePolicies(this.template, this.deployed, WHERE);
  }

  /** A function's environment exactly as the template sets it, plus the test's overrides. */
  environment(name: FunctionName): Record<string, string> {
    return {
      ...functionEnvironment(this.template, this.functionId(name), this.deployed, WHERE),
      ...this.overrides,
    };
  }

  functionArn(name: FunctionName): string {
    return this.deployed[this.functionId(name)]?.attrs.Arn ?? '';
  }

  private functionId(name: FunctionName): string {
    const id = this.functionIds[name];
    if (!id) throw new Error(`the template has no ${name} function`);
    return id;
  }

  /** The payload the daily schedule sends, from the template. */
  dailyInput(): EnumerateEvent {
    const schedule = Object.values(this.template.Resources).find(
      (r) => r.Type === 'AWS::Scheduler::Schedule',
    );
    const input = (schedule?.Properties?.Target as { Input?: string } | undefined)?.Input;
    if (!input) throw new Error('the daily schedule has no Input');
    return JSON.parse(input) as EnumerateEvent;
  }

  /**
   * Runs `task` as a person at a workstation: AWS credentials and the proxy as endpoint, nothing
   * of the stack in the environment (the commands find it through --stack), and the test overrides.
   */
  async asOperator<T>(task: () => Promise<T>): Promise<T> {
    return this.withEnvironment(
      'operator',
      { ...this.overrides, AWS_ENDPOINT_URL: this.proxy.endpoint },
      task,
    );
  }

  /** Runs `task` with process.env set as Lambda sets it for `name`, AWS calls going through the proxy. */
  async as<T>(name: FunctionName, task: () => Promise<T>): Promise<T> {
    return this.withEnvironment(
      name,
      {
        ...this.environment(name),
        AWS_ENDPOINT_URL: this.proxy.endpoint,
        AWS_REGION: WHERE.region,
        AWS_LAMBDA_FUNCTION_NAME: this.functionId(name),
      },
      task,
    );
  }

  private async withEnvironment<T>(
    principal: string,
    env: Record<string, string>,
    task: () => Promise<T>,
  ): Promise<T> {
    const saved = { ...process.env };
    for (const key of Object.keys(process.env)) {
      if (!/^(AWS_|PATH$|HOME$|NODE|TMPDIR$|VITEST)/u.test(key)) delete process.env[key];
    }
    Object.assign(process.env, env);
    this.proxy.actAs(principal);
    try {
      return await task();
    } finally {
      this.proxy.actAs('test');
      for (const key of Object.keys(process.env)) delete process.env[key];
      Object.assign(process.env, saved);
    }
  }

  context(name: FunctionName, timeoutMs: number): Context {
    const deadline = Date.now() + timeoutMs;
    return {
      callbackWaitsForEmptyEventLoop: false,
      functionName: this.functionId(name),
      functionVersion: '$LATEST',
      invokedFunctionArn: this.functionArn(name),
      memoryLimitInMB: '512',
      awsRequestId: `${name}-${Math.random().toString(16).slice(2)}`,
      logGroupName: `/aws/lambda/${this.functionId(name)}`,
      logStreamName: 'test',
      getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
      done: () => undefined,
      fail: () => undefined,
      succeed: () => undefined,
    };
  }

  /** Invokes the enumerator as the Scheduler does, continuations scheduled for real (on moto). */
  async invokeEnumerate(event: EnumerateEvent, now?: () => Date) {
    return this.as('enumerate', () =>
      enumerateHandler(event, this.context('enumerate', 900_000), { ...scheduleOnLambda, now }),
    );
  }

  /** Whether the workers' event source mapping is switched on now. */
  workersEnabled(): Promise<boolean> {
    return mappingEnabled(this.workerMappingId, this.proxy.endpoint);
  }

  /** Invokes the webhook function as its function URL does, with its role; `now` is the clock it checks timestamps against. */
  async invokeWebhook(event: LambdaFunctionURLEvent, now?: () => Date): Promise<LambdaFunctionURLResult> {
    return this.as('webhook', () => webhookHandler(event, { now }));
  }

  /** The input of the last continuation schedule the enumerator created, read back from the Scheduler. */
  async lastContinuationInput(): Promise<EnumerateEvent | undefined> {
    const created = this.proxy.requests.filter(
      (r) => r.principal === 'enumerate' && r.service === 'scheduler' && r.method === 'POST',
    );
    const last = created.at(-1);
    if (!last) return undefined;
    const name = decodeURIComponent(last.url.split('?')[0]?.split('/').at(-1) ?? '');
    const group = (JSON.parse(last.body ?? '{}') as { GroupName?: string }).GroupName;
    const scheduler = new SchedulerClient({ endpoint: this.proxy.endpoint });
    const schedule = await scheduler.send(new GetScheduleCommand({ Name: name, GroupName: group }));
    return JSON.parse(schedule.Target?.Input ?? '{}') as EnumerateEvent;
  }

  /**
   * Drains the work queue as the event source mapping does, with the function's role: receive a
   * batch (all attributes), invoke the handler with the SQS event, delete what succeeded.
   */
  async drainWorkQueue(batchSize: number, maxRounds = 50): Promise<number> {
    const queueArn = this.deployed[this.queueLogicalId()]?.attrs.Arn ?? '';
    let invocations = 0;
    for (let round = 0, idle = 0; round < maxRounds && idle < 2; round++) {
      // A disabled mapping does not poll: what is queued waits for the next enable.
      if (!(await mappingEnabled(this.workerMappingId, this.proxy.endpoint))) break;
      const received = await this.as('replicate', async () => {
        const sqs = createAwsClients().sqs;
        return sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: this.resources.queueUrl,
            MaxNumberOfMessages: batchSize,
            AttributeNames: ['All'],
            MessageAttributeNames: ['All'],
            WaitTimeSeconds: 0,
          }),
        );
      });
      const messages = received.Messages ?? [];
      if (messages.length === 0) {
        idle++;
        continue;
      }
      idle = 0;
      invocations++;
      const response: SQSBatchResponse = await this.as('replicate', () =>
        replicateHandler(sqsEventFromMessages(messages, queueArn), this.context('replicate', 900_000)),
      );
      const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
      const done = messages.filter((m) => !failed.has(m.MessageId ?? ''));
      if (done.length > 0) {
        await this.as('replicate', () =>
          createAwsClients().sqs.send(
            new DeleteMessageBatchCommand({
              QueueUrl: this.resources.queueUrl,
              Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle ?? '' })),
            }),
          ),
        );
      }
    }
    return invocations;
  }

  private queueLogicalId(): string {
    const id = Object.keys(this.template.Resources).find(
      (k) => this.template.Resources[k]?.Type === 'AWS::SQS::Queue' && !k.includes('DeadLetter'),
    );
    if (!id) throw new Error('the template has no work queue');
    return id;
  }

  /** The event source mapping's batch size, from the template. */
  batchSize(): number {
    const mapping = Object.values(this.template.Resources).find(
      (r) => r.Type === 'AWS::Lambda::EventSourceMapping',
    );
    return Number(mapping?.Properties?.BatchSize ?? 10);
  }

  async close(): Promise<void> {
    await this.proxy.close();
  }
}

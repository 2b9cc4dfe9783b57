import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { SchedulerClient } from '@aws-sdk/client-scheduler';
import { CloudinarySource } from '../cloudinary/CloudinarySource.js';
import { parseCloudinaryUrl, required, settingsFromEnv, type EngineSettings } from '../config.js';
import { wakingQueue } from '../engine/workers.js';
import { ConfigError } from '../errors.js';
import type { WorkerSwitch, WorkQueue } from '../types.js';
import { cloudinaryCredentialsFromParameter, cloudinaryCredentialsFromSecret } from './cloudinarySecret.js';
import { awsClientConfig, createAwsClients, type AwsClients } from './clients.js';
import type { ContinuationTarget } from './continuation.js';
import { DynamoStateStore } from './DynamoStateStore.js';
import { EventSourceSwitch } from './EventSourceSwitch.js';
import { S3ObjectStore } from './S3ObjectStore.js';
import { SqsWorkQueue } from './SqsWorkQueue.js';

export interface AwsEngine {
  settings: EngineSettings;
  clients: AwsClients;
  source: CloudinarySource;
  store: S3ObjectStore;
  state: DynamoStateStore;
  /** Sends start the workers when a switch is configured. */
  queue: WorkQueue;
  /** The replicate event source mapping (WORKER_MAPPING_ID); undefined where a drain loop consumes. */
  workers?: WorkerSwitch;
  bucket: string;
  table: string;
  queueUrl: string;
  dlqUrl?: string;
}

const DEPLOY_HINT = 'It is set by the deployed stack; for a workstation run, take it from the stack outputs.';

/**
 * Builds the engine on AWS from the environment: BUCKET_NAME, TABLE_NAME, QUEUE_URL, DLQ_URL and
 * CLOUDINARY_PARAMETER (an SSM SecureString, as deployed by default), CLOUDINARY_SECRET_ID (a Secrets
 * Manager secret) or CLOUDINARY_URL (a workstation). With WORKER_MAPPING_ID (set for the deployed
 * enumerator), sending work starts the replicate event source mapping.
 */
export async function awsEngineFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  clients: AwsClients = createAwsClients(env),
): Promise<AwsEngine> {
  const settings = settingsFromEnv(env);
  const bucket = required(env, 'BUCKET_NAME', DEPLOY_HINT);
  const table = required(env, 'TABLE_NAME', DEPLOY_HINT);
  const queueUrl = required(env, 'QUEUE_URL', DEPLOY_HINT);
  const dlqUrl = env.DLQ_URL?.trim() || undefined;
  const parameter = env.CLOUDINARY_PARAMETER?.trim();
  const secretId = env.CLOUDINARY_SECRET_ID?.trim();
  let credentials;
  if (parameter) credentials = await cloudinaryCredentialsFromParameter(clients.ssm, parameter);
  else if (secretId) credentials = await cloudinaryCredentialsFromSecret(clients.secrets, secretId);
  else if (env.CLOUDINARY_URL) credentials = parseCloudinaryUrl(env.CLOUDINARY_URL);
  else {
    throw new ConfigError(
      'None of CLOUDINARY_PARAMETER, CLOUDINARY_SECRET_ID and CLOUDINARY_URL is set; set one of them.',
    );
  }
  const sqsQueue = new SqsWorkQueue({ sqs: clients.sqs, queueUrl, dlqUrl });
  const workers = workerSwitchFromEnv(env, clients, queueUrl);
  return {
    settings,
    clients,
    workers,
    bucket,
    table,
    queueUrl,
    dlqUrl,
    source: new CloudinarySource({
      credentials,
      listingApi: settings.listingApi,
      pageSize: settings.pageSize,
      adminTimeoutMs: settings.adminTimeoutMs,
      idleTimeoutMs: settings.idleTimeoutMs,
      adminReserve: settings.adminReserve,
      adminRetry: { tries: settings.adminRetries },
    }),
    store: new S3ObjectStore({
      s3: clients.s3,
      bucket,
      partSize: settings.partSize,
      queueSize: settings.uploadQueueSize,
      spillDir: join(tmpdir(), 'cloudinary-replicator-parts'),
    }),
    state: new DynamoStateStore({ dynamo: clients.dynamo, table }),
    queue: workers ? wakingQueue(sqsQueue, workers) : sqsQueue,
  };
}

/** Where the enumerator schedules its own continuation; undefined when not configured. */
export function continuationFromEnv(
  env: NodeJS.ProcessEnv,
  functionArn: string,
): ContinuationTarget | undefined {
  const group = env.CONTINUATION_GROUP?.trim();
  const roleArn = env.CONTINUATION_ROLE_ARN?.trim();
  if (!group || !roleArn) return undefined;
  return { scheduler: new SchedulerClient({}), group, roleArn, functionArn };
}

const ENGINE_ENV = [
  'BUCKET_NAME',
  'TABLE_NAME',
  'QUEUE_URL',
  'DLQ_URL',
  'WORKER_MAPPING_ID',
  'CLOUDINARY_PARAMETER',
  'CLOUDINARY_SECRET_ID',
  'CLOUDINARY_URL',
  'AWS_ENDPOINT_URL',
  'AWS_REGION',
];
let cached: { key: string; engine: Promise<AwsEngine>; at: number } | undefined;
const ENGINE_TTL_MS = 5 * 60_000;

/**
 * The engine for this Lambda container: built once and reused across invocations (clients keep
 * their connections), rebuilt when the configuration changes or every few minutes so a rotated
 * secret is picked up.
 */
export function cachedAwsEngine(env: NodeJS.ProcessEnv = process.env): Promise<AwsEngine> {
  const key = JSON.stringify([...ENGINE_ENV.map((name) => env[name]), settingsFromEnv(env)]);
  if (!cached || cached.key !== key || Date.now() - cached.at > ENGINE_TTL_MS) {
    const engine = awsEngineFromEnv(env);
    cached = { key, engine, at: Date.now() };
    engine.catch(() => {
      if (cached?.engine === engine) cached = undefined;
    });
  }
  return cached.engine;
}

/** The workers' switch when the stack gives its mapping (WORKER_MAPPING_ID); local runs have none. */
function workerSwitchFromEnv(
  env: NodeJS.ProcessEnv,
  clients: AwsClients,
  queueUrl: string,
): WorkerSwitch | undefined {
  const mappingId = env.WORKER_MAPPING_ID?.trim();
  if (!mappingId) return undefined;
  return new EventSourceSwitch({
    lambda: new LambdaClient(awsClientConfig(env)),
    sqs: clients.sqs,
    mappingId,
    queueUrl,
  });
}

/** A queue whose sends switch the idle workers on, when the stack gives their mapping. */
export function workerWakingQueue(
  env: NodeJS.ProcessEnv,
  clients: AwsClients,
  queue: SqsWorkQueue,
): WorkQueue {
  const workers = workerSwitchFromEnv(env, clients, queue.queueUrl);
  return workers ? wakingQueue(queue, workers) : queue;
}

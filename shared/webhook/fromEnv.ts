import {
  cloudinaryCredentialsFromParameter,
  cloudinaryCredentialsFromSecret,
} from '../aws/cloudinarySecret.js';
import { createAwsClients, type AwsClients } from '../aws/clients.js';
import { DynamoNotificationLedger } from '../aws/DynamoNotificationLedger.js';
import { DynamoStateStore } from '../aws/DynamoStateStore.js';
import { SqsWorkQueue } from '../aws/SqsWorkQueue.js';
import { workerWakingQueue } from '../aws/engineFromEnv.js';
import { parseCloudinaryUrl, required, settingsFromEnv, type CloudinaryCredentials } from '../config.js';
import { ConfigError } from '../errors.js';
import type { WebhookDeps } from './handle.js';
import { SIGNATURE_ALGORITHMS, type SignatureAlgorithm } from './signature.js';

const DEPLOY_HINT = 'It is set by the deployed stack when webhooks are on (replicator:webhooks).';

/** `WEBHOOK_SIGNATURE_ALGORITHM`: sha1 (Cloudinary's default) or sha256. */
export function signatureAlgorithmFromEnv(env: NodeJS.ProcessEnv): SignatureAlgorithm {
  const value = (env.WEBHOOK_SIGNATURE_ALGORITHM ?? 'sha1').trim().toLowerCase();
  if (!(SIGNATURE_ALGORITHMS as readonly string[]).includes(value)) {
    throw new ConfigError(`WEBHOOK_SIGNATURE_ALGORITHM is "${value}"; use sha1 or sha256`);
  }
  return value as SignatureAlgorithm;
}

async function credentialsFromEnv(
  env: NodeJS.ProcessEnv,
  clients: AwsClients,
): Promise<CloudinaryCredentials> {
  const parameter = env.CLOUDINARY_PARAMETER?.trim();
  const secretId = env.CLOUDINARY_SECRET_ID?.trim();
  if (parameter) return cloudinaryCredentialsFromParameter(clients.ssm, parameter);
  if (secretId) return cloudinaryCredentialsFromSecret(clients.secrets, secretId);
  if (env.CLOUDINARY_URL) return parseCloudinaryUrl(env.CLOUDINARY_URL);
  throw new ConfigError(
    'None of CLOUDINARY_PARAMETER, CLOUDINARY_SECRET_ID and CLOUDINARY_URL is set; set one of them.',
  );
}

/** The webhook's dependencies from the environment the stack sets: the table, the queue, the api_secret. */
export async function webhookDepsFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  clients: AwsClients = createAwsClients(env),
): Promise<WebhookDeps> {
  const table = required(env, 'TABLE_NAME', DEPLOY_HINT);
  const queueUrl = required(env, 'QUEUE_URL', DEPLOY_HINT);
  const algorithm = signatureAlgorithmFromEnv(env);
  const credentials = await credentialsFromEnv(env, clients);
  return {
    apiSecret: credentials.apiSecret,
    algorithm,
    state: new DynamoStateStore({ dynamo: clients.dynamo, table }),
    queue: workerWakingQueue(env, clients, new SqsWorkQueue({ sqs: clients.sqs, queueUrl })),
    ledger: new DynamoNotificationLedger(clients.dynamo, table),
    settings: settingsFromEnv(env),
  };
}

let cached: { key: string; deps: Promise<WebhookDeps>; at: number } | undefined;
/** A rotated api_secret is picked up within this time. */
const TTL_MS = 5 * 60_000;

/** webhookDepsFromEnv, kept across warm invocations. */
export function cachedWebhookDeps(env: NodeJS.ProcessEnv = process.env): Promise<WebhookDeps> {
  const key = JSON.stringify(
    [
      'TABLE_NAME',
      'QUEUE_URL',
      'CLOUDINARY_PARAMETER',
      'CLOUDINARY_SECRET_ID',
      'CLOUDINARY_URL',
      'AWS_ENDPOINT_URL',
      'WEBHOOK_SIGNATURE_ALGORITHM',
    ].map((name) => env[name]),
  );
  if (!cached || cached.key !== key || Date.now() - cached.at > TTL_MS) {
    const deps = webhookDepsFromEnv(env);
    cached = { key, deps, at: Date.now() };
    deps.catch(() => {
      if (cached?.deps === deps) cached = undefined;
    });
  }
  return cached.deps;
}

import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import { SSMClient } from '@aws-sdk/client-ssm';
import { ConfigError } from '../errors.js';

/** The AWS clients the engine uses; injected so tests and CLIs can point them anywhere. */
export interface AwsClients {
  s3: S3Client;
  dynamo: DynamoDBClient;
  sqs: SQSClient;
  secrets: SecretsManagerClient;
  ssm: SSMClient;
}

/**
 * Builds clients the standard way: region, credentials and endpoints come from the environment
 * (`AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3`, ...). A custom S3 endpoint (an
 * S3-compatible server or moto) gets path-style addressing, since it has no per-bucket DNS.
 */
export function createAwsClients(env: NodeJS.ProcessEnv = process.env): AwsClients {
  const customS3 = Boolean(env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL);
  const common = awsClientConfig(env);
  return {
    s3: new S3Client({ ...common, forcePathStyle: customS3 }),
    dynamo: new DynamoDBClient(common),
    sqs: new SQSClient(common),
    secrets: new SecretsManagerClient(common),
    ssm: new SSMClient(common),
  };
}

/** Default deadline for connecting, and for a silent socket, in every AWS call. */
export const DEFAULT_AWS_TIMEOUT_MS = 60_000;

/**
 * Settings every AWS client gets: the SDK waits forever on a socket that never answers, so each
 * connection and each silence has a deadline (`AWS_TIMEOUT_MS`) after which the request is
 * aborted and its socket destroyed. Retries follow the SDK's own `AWS_MAX_ATTEMPTS`.
 */
export function awsClientConfig(env: NodeJS.ProcessEnv = process.env): {
  requestHandler: { connectionTimeout: number; socketTimeout: number };
} {
  const raw = env.AWS_TIMEOUT_MS?.trim();
  const ms = raw ? Number(raw) : DEFAULT_AWS_TIMEOUT_MS;
  if (!Number.isInteger(ms) || ms < 100 || ms > 3_600_000) {
    throw new ConfigError(`AWS_TIMEOUT_MS must be a whole number from 100 to 3600000, got "${raw}".`);
  }
  return { requestHandler: { connectionTimeout: ms, socketTimeout: ms } };
}

import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';

/** The AWS clients the engine uses; injected so tests and CLIs can point them anywhere. */
export interface AwsClients {
  s3: S3Client;
  dynamo: DynamoDBClient;
  sqs: SQSClient;
  secrets: SecretsManagerClient;
}

/**
 * Builds clients the standard way: region, credentials and endpoints come from the environment
 * (`AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3`, ...). A custom S3 endpoint (an
 * S3-compatible server or moto) gets path-style addressing, since it has no per-bucket DNS.
 */
export function createAwsClients(env: NodeJS.ProcessEnv = process.env): AwsClients {
  const customS3 = Boolean(env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL);
  return {
    s3: new S3Client({ forcePathStyle: customS3 }),
    dynamo: new DynamoDBClient({}),
    sqs: new SQSClient({}),
    secrets: new SecretsManagerClient({}),
  };
}

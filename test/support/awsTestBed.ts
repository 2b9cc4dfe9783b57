import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { inject } from 'vitest';
import { createAwsClients, type AwsClients } from '../../shared/aws/clients.js';
import { provisionAwsResources } from './awsResources.js';

export { provisionAwsResources, type AwsResources } from './awsResources.js';

export interface AwsTestBed {
  endpoint: string;
  bucket: string;
  table: string;
  queueUrl: string;
  dlqUrl: string;
  maxReceives: number;
  clients: AwsClients;
}

/** Points the AWS SDK at moto the standard way: AWS_ENDPOINT_URL and dummy credentials. */
export function useMotoEnvironment(endpoint: string = inject('motoEndpoint')): string {
  process.env.AWS_ENDPOINT_URL = endpoint;
  process.env.AWS_REGION = 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID = 'testing';
  process.env.AWS_SECRET_ACCESS_KEY = 'testing';
  delete process.env.AWS_PROFILE;
  return endpoint;
}

/** A moto-backed bucket, table and queues for one suite, on the run's shared moto server. */
export async function createAwsTestBed(
  options: { maxReceives?: number; visibilityTimeout?: number } = {},
): Promise<AwsTestBed> {
  const endpoint = useMotoEnvironment();
  const clients = createAwsClients();
  return { endpoint, clients, ...(await provisionAwsResources(clients, options)) };
}

export { DynamoDBClient, S3Client, SQSClient, SecretsManagerClient };

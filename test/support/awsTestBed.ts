import { randomUUID } from 'node:crypto';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, PutBucketVersioningCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { inject } from 'vitest';
import { createAwsClients, type AwsClients } from '../../shared/aws/clients.js';

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

export interface AwsResources {
  bucket: string;
  table: string;
  queueUrl: string;
  dlqUrl: string;
  maxReceives: number;
}

/**
 * Creates a versioned bucket, the state table, a work queue and its DLQ as the stack does, all
 * named from `prefix` plus a random id, so users of one moto server never see each other's data.
 * Usable outside Vitest (benchmarks) with any clients.
 */
export async function provisionAwsResources(
  clients: AwsClients,
  options: { prefix?: string; maxReceives?: number; visibilityTimeout?: number } = {},
): Promise<AwsResources> {
  const id = `${options.prefix ?? 'backup'}-${randomUUID().slice(0, 8)}`;
  const bucket = id;
  const table = `${id}-state`;
  const maxReceives = options.maxReceives ?? 3;
  await clients.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  await clients.s3.send(
    new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }),
  );
  await clients.dynamo.send(
    new CreateTableCommand({
      TableName: table,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
    }),
  );
  const dlq = await clients.sqs.send(new CreateQueueCommand({ QueueName: `${id}-dlq` }));
  const dlqUrl = dlq.QueueUrl ?? '';
  const dlqArn = await queueArn(clients.sqs, dlqUrl);
  const work = await clients.sqs.send(
    new CreateQueueCommand({
      QueueName: `${id}-work`,
      Attributes: {
        VisibilityTimeout: String(options.visibilityTimeout ?? 30),
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: maxReceives + 1 }),
      },
    }),
  );
  return { bucket, table, queueUrl: work.QueueUrl ?? '', dlqUrl, maxReceives };
}

/** A moto-backed bucket, table and queues for one suite, on the run's shared moto server. */
export async function createAwsTestBed(
  options: { maxReceives?: number; visibilityTimeout?: number } = {},
): Promise<AwsTestBed> {
  const endpoint = useMotoEnvironment();
  const clients = createAwsClients();
  return { endpoint, clients, ...(await provisionAwsResources(clients, options)) };
}

async function queueArn(sqs: SQSClient, url: string): Promise<string> {
  const attrs = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }),
  );
  const arn = attrs.Attributes?.QueueArn;
  if (!arn) throw new Error(`moto returned no ARN for ${url}`);
  return arn;
}

export { DynamoDBClient, S3Client, SQSClient, SecretsManagerClient };

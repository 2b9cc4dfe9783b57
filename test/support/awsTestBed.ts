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

/**
 * Creates a versioned bucket, the state table, a work queue and its DLQ, all uniquely named so
 * suites running side by side on one moto_server never see each other's data.
 */
export async function createAwsTestBed(
  options: { maxReceives?: number; visibilityTimeout?: number } = {},
): Promise<AwsTestBed> {
  const endpoint = useMotoEnvironment();
  const id = randomUUID().slice(0, 8);
  const bucket = `backup-${id}`;
  const table = `state-${id}`;
  const maxReceives = options.maxReceives ?? 3;
  const clients = createAwsClients();

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
  const dlq = await clients.sqs.send(new CreateQueueCommand({ QueueName: `work-${id}-dlq` }));
  const dlqUrl = dlq.QueueUrl ?? '';
  const dlqArn = await queueArn(clients.sqs, dlqUrl);
  const work = await clients.sqs.send(
    new CreateQueueCommand({
      QueueName: `work-${id}`,
      Attributes: {
        VisibilityTimeout: String(options.visibilityTimeout ?? 30),
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: maxReceives + 1 }),
      },
    }),
  );
  return { endpoint, bucket, table, queueUrl: work.QueueUrl ?? '', dlqUrl, maxReceives, clients };
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

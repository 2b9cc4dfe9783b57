import { randomUUID } from 'node:crypto';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, PutBucketVersioningCommand } from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { AwsClients } from '../../shared/aws/clients.js';

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
        { AttributeName: 'assetId', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      // As infra/constructs/StateTable.ts: renames look states up by asset_id.
      GlobalSecondaryIndexes: [
        {
          IndexName: 'byAssetId',
          KeySchema: [{ AttributeName: 'assetId', KeyType: 'HASH' }],
          Projection: { ProjectionType: 'KEYS_ONLY' },
        },
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

async function queueArn(sqs: SQSClient, url: string): Promise<string> {
  const attrs = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }),
  );
  const arn = attrs.Attributes?.QueueArn;
  if (!arn) throw new Error(`moto returned no ARN for ${url}`);
  return arn;
}

import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { ListObjectsV2Command as ListObjects } from '@aws-sdk/client-s3';
import { DynamoStateStore } from '../../shared/aws/DynamoStateStore.js';
import { assetIdOf } from '../../shared/keys.js';
import type { AssetState } from '../../shared/types.js';
import { startCloudinaryDouble, type CloudinaryDouble, type DoubleOptions } from '../double/index.js';
import type { DoubleAsset } from '../double/types.js';
import { createAwsTestBed, type AwsTestBed } from './awsTestBed.js';

export interface PipelineBed {
  aws: AwsTestBed;
  double: CloudinaryDouble;
  state: DynamoStateStore;
  close(): Promise<void>;
}

/**
 * A moto bucket/table/queue and a Cloudinary double, with process.env set the way the deployed
 * stack sets it for the handlers (plus CLOUDINARY_URL in place of the secret).
 */
export async function createPipelineBed(
  doubleOptions: DoubleOptions,
  env: Record<string, string> = {},
): Promise<PipelineBed> {
  const aws = await createAwsTestBed({ maxReceives: Number(env.MAX_RECEIVES ?? 3), visibilityTimeout: 30 });
  const double = await startCloudinaryDouble(doubleOptions);
  Object.assign(process.env, {
    CLOUDINARY_URL: double.cloudinaryUrl,
    BUCKET_NAME: aws.bucket,
    TABLE_NAME: aws.table,
    QUEUE_URL: aws.queueUrl,
    DLQ_URL: aws.dlqUrl,
    MAX_RECEIVES: String(aws.maxReceives),
    RETRY_BASE_SECONDS: '0',
    PART_SIZE_MB: '5',
    IDLE_TIMEOUT_MS: '1500',
    ADMIN_TIMEOUT_MS: '5000',
    WORKER_CONCURRENCY: '8',
    POWERTOOLS_LOG_LEVEL: 'ERROR',
    POWERTOOLS_METRICS_DISABLED: 'true',
    // Every run lists everything (deletions on the next run); tests of incremental runs ask for them.
    RECONCILE_EVERY_DAYS: '0',
    ...env,
  });
  delete process.env.CLOUDINARY_SECRET_ID;
  const state = new DynamoStateStore({ dynamo: aws.clients.dynamo, table: aws.table });
  return { aws, double, state, close: () => double.close() };
}

export function idOf(asset: DoubleAsset): string {
  return assetIdOf({
    resourceType: asset.resource_type,
    deliveryType: asset.type,
    publicId: asset.public_id,
  });
}

export async function statesOf(bed: PipelineBed, assets: DoubleAsset[]): Promise<Map<string, AssetState>> {
  return bed.state.getMany(assets.map(idOf));
}

/** Every current object in the bucket under `prefix`: key → { size, etag }. */
export async function bucketObjects(
  bed: PipelineBed,
  prefix = 'assets/',
): Promise<Map<string, { size: number; etag: string }>> {
  const objects = new Map<string, { size: number; etag: string }>();
  let token: string | undefined;
  do {
    const page = await bed.aws.clients.s3.send(
      new ListObjects({ Bucket: bed.aws.bucket, Prefix: prefix, ContinuationToken: token }),
    );
    for (const o of page.Contents ?? []) {
      objects.set(o.Key ?? '', { size: o.Size ?? 0, etag: (o.ETag ?? '').replace(/"/gu, '') });
    }
    token = page.NextContinuationToken;
  } while (token);
  return objects;
}

/** Drains the dead-letter queue: each message's asset id and reason. */
export async function deadLetters(bed: PipelineBed): Promise<Array<{ publicId: string; reason: string }>> {
  const out: Array<{ publicId: string; reason: string }> = [];
  for (;;) {
    const got = await bed.aws.clients.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: bed.aws.dlqUrl,
        MaxNumberOfMessages: 10,
        MessageAttributeNames: ['All'],
        WaitTimeSeconds: 0,
      }),
    );
    if (!got.Messages?.length) return out;
    for (const m of got.Messages) {
      const body = JSON.parse(m.Body ?? '{}') as { asset?: { publicId?: string } };
      out.push({
        publicId: body.asset?.publicId ?? '',
        reason: m.MessageAttributes?.reason?.StringValue ?? '',
      });
    }
  }
}

/**
 * The replicate worker on its own: `replicateWork` (the path every Lambda batch takes) copying the
 * job's assets at once into S3 on moto (S3ObjectStore, DynamoStateStore) or, without an endpoint,
 * into a local folder. The parent samples this process's RSS.
 */
import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { DynamoStateStore } from '../../../shared/aws/DynamoStateStore.js';
import { S3ObjectStore } from '../../../shared/aws/S3ObjectStore.js';
import { CloudinarySource } from '../../../shared/cloudinary/CloudinarySource.js';
import { parseCloudinaryUrl, settingsFromEnv } from '../../../shared/config.js';
import { replicateWork, type ReplicateDeps } from '../../../shared/engine/replicate.js';
import { LocalObjectStore } from '../../../shared/local/LocalObjectStore.js';
import { SqliteStateStore } from '../../../shared/local/SqliteStateStore.js';
import { MemoryWorkQueue } from '../../../shared/memory/MemoryWorkQueue.js';
import type { SourceAsset } from '../../../shared/types.js';
import { failChild, receiveJob } from '../support/child.js';
import type { ReplicateJob, TransferDone } from './protocol.js';
import { cpuSince, peakRss } from './util.js';

function depsFor(job: ReplicateJob): ReplicateDeps {
  const settings = settingsFromEnv({});
  const common = {
    source: new CloudinarySource({ credentials: parseCloudinaryUrl(job.cloudinaryUrl) }),
    queue: new MemoryWorkQueue(),
    maxReceives: 1,
  };
  if (job.awsEndpoint === undefined) {
    return {
      ...common,
      store: new LocalObjectStore(job.dest),
      state: new SqliteStateStore(job.dest),
    };
  }
  const s3 = new S3Client({ endpoint: job.awsEndpoint, forcePathStyle: true });
  const dynamo = new DynamoDBClient({ endpoint: job.awsEndpoint });
  return {
    ...common,
    store: new S3ObjectStore({
      s3,
      bucket: job.bucket,
      partSize: settings.partSize,
      queueSize: settings.uploadQueueSize,
    }),
    state: new DynamoStateStore({ dynamo, table: job.table }),
  };
}

async function copy(deps: ReplicateDeps, asset: SourceAsset): Promise<number> {
  const result = await replicateWork(deps, {
    item: { runId: 'bench', asset },
    receiptHandle: randomUUID(),
    receiveCount: 1,
    messageId: randomUUID(),
  });
  if (result.outcome !== 'replicated') {
    throw new Error(`${asset.publicId}: ${result.outcome}${'error' in result ? `: ${result.error}` : ''}`);
  }
  return result.bytes;
}

async function main(): Promise<void> {
  const job = await receiveJob<ReplicateJob>();
  const deps = depsFor(job);
  await copy(deps, job.warmup);
  process.send?.({ kind: 'ready', rss: process.memoryUsage().rss });
  await receiveJob<{ kind: 'go' }>();
  const cpu = process.cpuUsage();
  const started = performance.now();
  const sizes = await Promise.all(job.assets.map((asset) => copy(deps, asset)));
  const done: TransferDone = {
    kind: 'done',
    seconds: (performance.now() - started) / 1000,
    files: sizes.length,
    bytes: sizes.reduce((a, b) => a + b, 0),
    cpu: cpuSince(cpu),
    peakRss: peakRss(),
    failed: 0,
  };
  process.send?.(done, () => process.exit(0));
}

main().catch(failChild);

import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { DeleteMessageCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awsEngineFromEnv } from '../shared/aws/engineFromEnv.js';
import { sqsEventFromMessages } from '../shared/aws/SqsWorkQueue.js';
import { replicateRecords } from '../shared/engine/batch.js';
import { enumerate } from '../shared/engine/enumerate.js';
import { objectMetadata, replicateWork } from '../shared/engine/replicate.js';
import { assetIdOf, objectKeyFor } from '../shared/keys.js';
import { sourceAssetOf } from './bench/support/library.js';
import { sleep } from './contracts/support.js';
import { generateLibrary } from './double/index.js';
import { bucketObjects, createPipelineBed, idOf, type PipelineBed } from './support/pipelineBed.js';
import { servedBytes } from './support/backupBed.js';

const MiB = 1024 * 1024;

describe('a copy longer than one invocation', { timeout: 180_000 }, () => {
  let bed: PipelineBed;

  beforeAll(async () => {
    bed = await createPipelineBed(
      {
        library: generateLibrary({
          seed: 'handover',
          counts: { video: { upload: 0 } },
          large: [
            { resourceType: 'video', bytes: 23 * MiB, publicId: 'long/take', format: 'mp4' },
            // Not listed (raw is not enumerated here): copied by hand below.
            { resourceType: 'raw', bytes: 11 * MiB, publicId: 'archive.zip' },
          ],
        }),
      },
      { DELIVERY_TYPES: 'upload', RESOURCE_TYPES: 'video', MAX_RECEIVES: '2' },
    );
    bed.double.faults.add({ route: ['delivery', 'download'], kind: 'bandwidth', bytesPerSecond: 4_000_000 });
  });
  afterAll(async () => bed?.close());

  it('is handed over part by part to the next invocation and arrives whole, fetching again at most the part each stop cut short', async () => {
    const engine = await awsEngineFromEnv();
    const asset = bed.double.library.all().find((each) => each.resource_type === 'video');
    if (!asset) throw new Error('no asset');
    await enumerate({ ...engine, settings: engine.settings });
    const deps = { ...engine, maxReceives: 2, retryBaseSeconds: 0 };
    const reached: number[] = [];
    let handedOver = 0;

    for (let invocation = 0; invocation < 20; invocation++) {
      const received = await bed.aws.clients.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: bed.aws.queueUrl,
          MaxNumberOfMessages: 1,
          AttributeNames: ['All'],
          WaitTimeSeconds: 1,
        }),
      );
      const messages = received.Messages ?? [];
      if (messages.length === 0) break;
      const startedAt = (await bed.state.getCheckpoint(idOf(asset)))?.bytes ?? 0;
      // The invocation's deadline arrives once it has recorded one more part: progress, not a clock.
      const stop = new AbortController();
      let watching = true;
      const watcher = (async () => {
        while (watching) {
          const now = (await bed.state.getCheckpoint(idOf(asset)))?.bytes ?? 0;
          if (now > startedAt) return stop.abort(new Error('the invocation reached its deadline'));
          await sleep(20);
        }
      })();
      const summary = await replicateRecords(
        deps,
        sqsEventFromMessages(messages, 'arn:aws:sqs:us-east-1:123456789012:work').Records,
        { deadline: Date.now() + 600_000, concurrency: 1, stop: stop.signal },
      );
      watching = false;
      await watcher;
      handedOver += summary.handedOver;
      reached.push((await bed.state.getCheckpoint(idOf(asset)))?.bytes ?? asset.bytes);
      // What the event source does with a batch's successes.
      for (const message of messages) {
        if (!summary.batchItemFailures.some((failure) => failure.itemIdentifier === message.MessageId))
          await bed.aws.clients.sqs.send(
            new DeleteMessageCommand({ QueueUrl: bed.aws.queueUrl, ReceiptHandle: message.ReceiptHandle }),
          );
      }
    }

    const state = (await bed.state.getMany([idOf(asset)])).get(idOf(asset));
    const objects = await bucketObjects(bed);
    const uploads = await bed.aws.clients.s3.send(
      new ListMultipartUploadsCommand({ Bucket: bed.aws.bucket }),
    );
    const waste = servedBytes(bed.double) / asset.bytes;
    console.log(
      `handover: ${handedOver} handovers, checkpoints ${reached.join(', ')}, waste ${waste.toFixed(3)}`,
    );

    expect(handedOver).toBeGreaterThanOrEqual(2);
    expect(reached).toEqual([...reached].sort((a, b) => a - b));
    expect(state).toMatchObject({
      status: 'replicated',
      bytes: asset.bytes,
      md5: await bed.double.library.md5Of(asset),
    });
    expect(objects.size).toBe(1);
    expect(uploads.Uploads ?? []).toEqual([]);
    expect(await bed.state.getCheckpoint(idOf(asset))).toBeUndefined();
    // Each stop loses at most the part being read (5 MiB here; 8 MiB of a 5 GB invocation deployed).
    expect(servedBytes(bed.double)).toBeLessThanOrEqual(asset.bytes + handedOver * 5 * MiB);
  });

  it('an upload completed by an attempt that stopped before recording it is recorded, not fetched again', async () => {
    const engine = await awsEngineFromEnv();
    const double = bed.double.library.all().find((each) => each.resource_type === 'raw');
    if (!double) throw new Error('no asset');
    const asset = await sourceAssetOf(bed.double.library, double);
    const key = objectKeyFor(asset);
    const id = assetIdOf(asset);
    // The earlier attempt: every part recorded, the upload completed, then it died.
    await engine.store.put(key, await engine.source.open(asset).then((opened) => opened.stream), {
      metadata: objectMetadata(asset),
      sizeHint: asset.bytes,
      expected: { bytes: asset.bytes, md5: asset.etag },
      resumable: {
        version: asset.version,
        onCheckpoint: (checkpoint) => bed.state.saveCheckpoint(id, checkpoint),
      },
    });
    const servedBefore = servedBytes(bed.double);

    const result = await replicateWork(
      { ...engine, maxReceives: 2 },
      { item: { runId: 'r', asset }, receiptHandle: 'h', receiveCount: 1, messageId: 'm' },
    );

    expect(result).toMatchObject({ outcome: 'replicated', md5: asset.etag });
    expect(servedBytes(bed.double)).toBe(servedBefore);
    expect((await bed.state.getMany([id])).get(id)).toMatchObject({ status: 'replicated', md5: asset.etag });
    expect(await bed.state.getCheckpoint(id)).toBeUndefined();
  });
});

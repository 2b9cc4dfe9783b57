import { createHash } from 'node:crypto';
import { HeadObjectCommand, ListObjectVersionsCommand } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCycle } from '../functions/cycle.js';
import { META } from '../shared/constants.js';
import { objectKeyFor } from '../shared/keys.js';
import { generateLibrary } from './double/index.js';
import type { DoubleAsset } from './double/types.js';
import { bucketObjects, createPipelineBed, idOf, statesOf, type PipelineBed } from './support/pipelineBed.js';

const TINY = { image: [2_000, 30_000], video: [20_000, 80_000], raw: [500, 8_000] } as const;
const MULTIPART_BYTES = 12 * 1024 * 1024;

function keyOf(asset: DoubleAsset): string {
  return objectKeyFor({
    resourceType: asset.resource_type,
    deliveryType: asset.type,
    publicId: asset.public_id,
    format: asset.format,
  });
}

function downloads(bed: PipelineBed): number {
  return bed.double.counters.deliveryRequests + bed.double.counters.downloadApiRequests;
}

function downloadedBytes(bed: PipelineBed): number {
  return bed.double.counters.deliveryBytes + bed.double.counters.downloadBytes;
}

describe('a full replication of a 2,000-asset library', { timeout: 600_000 }, () => {
  let bed: PipelineBed;

  beforeAll(async () => {
    bed = await createPipelineBed({
      library: generateLibrary({
        seed: 'pipeline',
        counts: {
          image: { upload: 1400, private: 150, authenticated: 100 },
          video: { upload: 60, private: 10 },
          raw: { upload: 220, private: 20, authenticated: 10 },
        },
        sizes: TINY,
        awkwardIds: true,
        large: [
          { resourceType: 'video', type: 'private', bytes: MULTIPART_BYTES, publicId: 'long/recording' },
        ],
      }),
    });
  }, 120_000);
  afterAll(async () => bed?.close());

  it('copies every asset byte for byte, with its metadata, and records it replicated', async () => {
    const assets = bed.double.library.all();
    expect(assets.length).toBeGreaterThanOrEqual(2000);

    const summary = await runCycle({ workers: 2 });

    expect(summary.run?.phase).toBe('completed');
    expect(summary.run?.counters.listed).toBe(assets.length);
    const objects = await bucketObjects(bed);
    const states = await statesOf(bed, assets);
    for (const asset of assets) {
      const md5 = await bed.double.library.md5Of(asset);
      const object = objects.get(keyOf(asset));
      const state = states.get(idOf(asset));
      expect(object?.size, asset.public_id).toBe(asset.bytes);
      expect(state?.status, asset.public_id).toBe('replicated');
      expect(state?.md5, asset.public_id).toBe(md5);
      // Single-part uploads carry the content MD5 as their S3 ETag: a check S3 made, not us.
      const singlePart = asset.bytes < 5 * 1024 * 1024;
      expect(singlePart ? object?.etag : md5, asset.public_id).toBe(md5);
    }
    expect(objects.size).toBe(assets.length);
  });

  it('writes the identifying metadata on each copy, even for awkward and private ids', async () => {
    const awkward = bed.double.library.all().filter((a) => a.tags.includes('awkward'));
    const large = bed.double.library.get('video', 'private', 'long/recording');
    expect(awkward.length).toBeGreaterThan(10);

    for (const asset of [...awkward, large as DoubleAsset]) {
      const head = await bed.aws.clients.s3.send(
        new HeadObjectCommand({ Bucket: bed.aws.bucket, Key: keyOf(asset) }),
      );
      const meta = head.Metadata ?? {};
      // Ids too long for S3's 2 KB of metadata are named by their hash; the manifest has them whole.
      const named = meta[META.publicId]
        ? decodeURIComponent(meta[META.publicId] ?? '')
        : meta[META.publicIdSha256] === createHash('sha256').update(asset.public_id).digest('hex')
          ? asset.public_id
          : undefined;
      expect(named).toBe(asset.public_id);
      expect(meta[META.version]).toBe(String(asset.version));
      expect(meta[META.assetId]).toBe(asset.asset_id);
      expect(meta[META.resourceType]).toBe(asset.resource_type);
      expect(meta[META.deliveryType]).toBe(asset.type);
      expect(meta[META.createdAt]).toBe(asset.created_at);
      expect(meta[META.md5]).toBe(await bed.double.library.md5Of(asset));
    }
  });

  it('downloads nothing and enqueues nothing when nothing changed', async () => {
    const before = downloadedBytes(bed);

    const summary = await runCycle({ workers: 2 });

    expect(summary.run?.counters.enqueued).toBe(0);
    expect(downloadedBytes(bed) - before).toBe(0);
  });

  it('copies exactly the overwritten and added assets and marks the deleted ones, keeping their copies', async () => {
    const library = bed.double.library;
    const images = library.all().filter((a) => a.resource_type === 'image' && a.type === 'upload');
    const overwritten = images.slice(0, 10).map((a) => library.overwrite('image', 'upload', a.public_id));
    const deleted = images.slice(10, 15);
    for (const a of deleted) library.delete('image', 'upload', a.public_id);
    const added = Array.from({ length: 20 }, (_, i) =>
      library.add({ publicId: `new/${i}`, resourceType: 'raw', type: 'upload', bytes: 1000 + i }),
    );
    const downloadsBefore = downloads(bed);

    const summary = await runCycle({ workers: 2 });

    expect(summary.run?.counters.enqueued).toBe(30);
    expect(downloads(bed) - downloadsBefore).toBe(30);
    expect(summary.run?.counters.deleted).toBe(5);
    const states = await statesOf(bed, [...overwritten, ...added, ...deleted]);
    for (const a of [...overwritten, ...added]) {
      expect(states.get(idOf(a))?.status).toBe('replicated');
      expect(states.get(idOf(a))?.version).toBe(a.version);
      expect(states.get(idOf(a))?.md5).toBe(await library.md5Of(a));
    }
    const objects = await bucketObjects(bed);
    for (const a of deleted) {
      expect(states.get(idOf(a))?.status).toBe('deleted-at-source');
      expect(objects.has(keyOf(a))).toBe(true);
    }
    const versions = await bed.aws.clients.s3.send(
      new ListObjectVersionsCommand({ Bucket: bed.aws.bucket, Prefix: keyOf(overwritten[0] as DoubleAsset) }),
    );
    // The overwritten original stays as a noncurrent version.
    expect(versions.Versions?.length).toBe(2);
  });

  it('writes a manifest of every asset with its tags, context and metadata', async () => {
    const { readManifest, manifestKey } = await import('../shared/engine/manifest.js');
    const { S3ObjectStore } = await import('../shared/aws/S3ObjectStore.js');
    const latest = await bed.state.latestRun();
    const store = new S3ObjectStore({ s3: bed.aws.clients.s3, bucket: bed.aws.bucket });
    const entries = new Map<string, { tags?: string[] }>();

    for await (const entry of readManifest(store, manifestKey(latest?.runId ?? '')))
      entries.set(entry.id, entry);

    const assets = bed.double.library.all();
    expect(entries.size).toBe(assets.length);
    const tagged = assets.find((a) => a.tags.length > 0) as DoubleAsset;
    expect(entries.get(idOf(tagged))?.tags).toEqual([...tagged.tags]);
  });
});

describe('a listing larger than the Admin API budget', { timeout: 300_000 }, () => {
  let bed: PipelineBed;

  beforeAll(async () => {
    bed = await createPipelineBed(
      {
        library: generateLibrary({
          seed: 'windows',
          counts: { image: { upload: 45, private: 12 }, video: { upload: 8 }, raw: { upload: 15 } },
          sizes: TINY,
        }),
        rateLimitPerHour: 6,
        now: () => new Date('2026-03-01T10:15:00Z'),
      },
      { LISTING_PAGE_SIZE: '10', ADMIN_RESERVE: '1', DELIVERY_TYPES: 'upload,private' },
    );
  });
  afterAll(async () => bed?.close());

  it('completes in one run across several rate-limit windows without listing a page twice', async () => {
    const waits: Date[] = [];

    const summary = await runCycle({
      workers: 1,
      now: () => bed.double.clock.now(),
      sleepUntil: async (until) => {
        waits.push(until);
        bed.double.clock.set(until);
      },
    });

    expect(summary.run?.phase).toBe('completed');
    expect(waits.length).toBeGreaterThanOrEqual(2);
    expect(summary.run?.counters.listed).toBe(bed.double.library.size);
    const listings = bed.double.requestLog.filter(
      (r) => (r.kind === 'search' || r.kind === 'admin') && r.status === 200,
    );
    const pages = listings.map((r) => JSON.stringify(r.params ?? {}));
    expect(new Set(pages).size).toBe(pages.length);
    const states = await statesOf(bed, bed.double.library.all());
    expect([...states.values()].every((s) => s.status === 'replicated')).toBe(true);
    expect(states.size).toBe(bed.double.library.size);
  });
});

describe('replication under injected faults', { timeout: 300_000 }, () => {
  let bed: PipelineBed;
  const ids = { flaky: 'f/503', reset: 'f/reset', short: 'f/short', corrupt: 'f/corrupt', hang: 'f/hang' };

  beforeAll(async () => {
    const library = generateLibrary({ seed: 'faults', counts: { image: { upload: 10 } }, sizes: TINY });
    for (const publicId of Object.values(ids)) {
      library.add({ publicId, resourceType: 'image', type: 'upload', format: 'jpg', bytes: 200_000 });
    }
    // Generous receives and idle time: the injected faults, not a loaded machine, must decide the outcome.
    bed = await createPipelineBed(
      { library },
      { DELIVERY_TYPES: 'upload', RESOURCE_TYPES: 'image', MAX_RECEIVES: '5', IDLE_TIMEOUT_MS: '3000' },
    );
    const faults = bed.double.faults;
    faults.add({ route: 'delivery', publicId: ids.flaky, kind: 'status', status: 503, times: 2 });
    faults.add({ route: 'delivery', publicId: ids.reset, kind: 'reset', afterBytes: 50_000, times: 1 });
    faults.add({ route: 'delivery', publicId: ids.short, kind: 'short', afterBytes: 100_000, times: 1 });
    faults.add({ route: 'delivery', publicId: ids.hang, kind: 'hang', times: 1 });
    faults.add({ route: ['delivery', 'download'], publicId: ids.corrupt, kind: 'corrupt' });
  });
  afterAll(async () => bed?.close());

  it('ends with correct copies of recoverable assets and the corrupt one dead-lettered with its reason', async () => {
    const summary = await runCycle({ workers: 2 });

    expect(summary.run?.phase).toBe('completed');
    const assets = bed.double.library.all();
    const states = await statesOf(bed, assets);
    const objects = await bucketObjects(bed);
    for (const asset of assets) {
      if (asset.public_id === ids.corrupt) continue;
      expect(states.get(idOf(asset))?.status, asset.public_id).toBe('replicated');
      expect(objects.get(keyOf(asset))?.etag, asset.public_id).toBe(await bed.double.library.md5Of(asset));
    }
    const corrupt = bed.double.library.get('image', 'upload', ids.corrupt) as DoubleAsset;
    expect(states.get(idOf(corrupt))?.status).not.toBe('replicated');
    expect(objects.has(keyOf(corrupt))).toBe(false);
    const dlq = await bed.aws.clients.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: bed.aws.dlqUrl,
        MaxNumberOfMessages: 10,
        MessageAttributeNames: ['All'],
      }),
    );
    expect(dlq.Messages?.length).toBe(1);
    expect(dlq.Messages?.[0]?.Body).toContain(ids.corrupt);
    expect(dlq.Messages?.[0]?.MessageAttributes?.reason?.StringValue).toMatch(
      /MD5 [0-9a-f]{32} does not match/u,
    );
  });
});

describe('at-least-once delivery and bad credentials', { timeout: 300_000 }, () => {
  let bed: PipelineBed;

  beforeAll(async () => {
    bed = await createPipelineBed(
      { library: generateLibrary({ seed: 'dup', counts: { image: { upload: 3 } }, sizes: TINY }) },
      { DELIVERY_TYPES: 'upload' },
    );
  });
  afterAll(async () => bed?.close());

  it('leaves one object version and one state when the same message is handled twice at once', async () => {
    const { replicateHandler } = await import('../functions/replicate.js');
    const { lambdaContext } = await import('../functions/cycle.js');
    const { SqsWorkQueue, sqsEventFromMessages } = await import('../shared/aws/SqsWorkQueue.js');
    const { CloudinarySource } = await import('../shared/cloudinary/CloudinarySource.js');
    const { parseCloudinaryUrl } = await import('../shared/config.js');
    const asset = bed.double.library.all()[0] as DoubleAsset;
    const source = new CloudinarySource({ credentials: parseCloudinaryUrl(bed.double.cloudinaryUrl) });
    const page = await source.listPage({ resourceType: 'image', deliveryType: 'upload' }, undefined);
    const listed = page.assets.find((a) => a.publicId === asset.public_id);
    const queue = new SqsWorkQueue({ sqs: bed.aws.clients.sqs, queueUrl: bed.aws.queueUrl });
    await queue.sendBatch([{ runId: 'dup-run', asset: listed! }]);
    const received = await bed.aws.clients.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: bed.aws.queueUrl, MessageSystemAttributeNames: ['All'] }),
    );
    const event = sqsEventFromMessages(received.Messages ?? [], 'arn:aws:sqs:us-east-1:000000000000:work');

    const results = await Promise.all([
      replicateHandler(event, lambdaContext(60_000, 'replicate')),
      replicateHandler(event, lambdaContext(60_000, 'replicate')),
    ]);

    const versions = await bed.aws.clients.s3.send(
      new ListObjectVersionsCommand({ Bucket: bed.aws.bucket, Prefix: keyOf(asset) }),
    );
    expect(versions.Versions?.length).toBe(1);
    const states = await statesOf(bed, [asset]);
    expect(states.get(idOf(asset))?.status).toBe('replicated');
    // One delivery copied it; the other was told to look again later, and then finds it done.
    expect(results.flatMap((r) => r.batchItemFailures).length).toBeLessThanOrEqual(1);
  });

  it('stops a run with bad credentials loudly, marks it failed and changes nothing else', async () => {
    const good = process.env.CLOUDINARY_URL as string;
    process.env.CLOUDINARY_URL = good.replace(`:${bed.double.apiSecret}@`, ':wrong-secret@');
    const objectsBefore = await bucketObjects(bed);
    try {
      const failure = await runCycle({ workers: 1 }).then(
        () => undefined,
        (error: unknown) => error as Error,
      );

      expect(failure?.message).toMatch(/rejected the credentials .*CLOUDINARY_URL/u);
      expect(failure?.message).not.toContain('wrong-secret');
      const run = await bed.state.latestRun();
      expect(run?.phase).toBe('failed');
      expect(run?.error).toMatch(/401/u);
      expect((await bucketObjects(bed)).size).toBe(objectsBefore.size);
      const depth = await bed.aws.clients.sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: bed.aws.queueUrl,
          AttributeNames: ['ApproximateNumberOfMessages'],
        }),
      );
      expect(depth.Attributes?.ApproximateNumberOfMessages).toBe('0');
    } finally {
      process.env.CLOUDINARY_URL = good;
    }
  });
});

import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateTableCommand,
  DeleteTableCommand,
  DynamoDBClient,
  DynamoDBServiceException,
  GetItemCommand,
  type BatchGetItemCommandInput,
  type BatchGetItemCommandOutput,
} from '@aws-sdk/client-dynamodb';
import {
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectTaggingCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import {
  CreateQueueCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type ChangeMessageVisibilityBatchCommandInput,
  type ChangeMessageVisibilityBatchCommandOutput,
  type SendMessageBatchCommandInput,
  type SendMessageBatchCommandOutput,
} from '@aws-sdk/client-sqs';
import { beforeAll, describe, expect, it } from 'vitest';
import { DynamoStateStore, assetKey, runKey } from '../shared/aws/DynamoStateStore.js';
import { MIN_PART_BYTES, S3ObjectStore, partSizeFor } from '../shared/aws/S3ObjectStore.js';
import { SqsWorkQueue, sqsEventFromMessages, workFromSqsRecord } from '../shared/aws/SqsWorkQueue.js';
import { createAwsClients } from '../shared/aws/clients.js';
import { META } from '../shared/constants.js';
import {
  FatalError,
  IntegrityError,
  PermanentAssetError,
  RetryableError,
  ConfigError,
} from '../shared/errors.js';
import { assetIdOf } from '../shared/keys.js';
import type { AssetState, CopyCheckpoint, ReceivedWork, WorkItem } from '../shared/types.js';
import { objectStoreContract } from './contracts/objectStoreContract.js';
import { stateStoreContract } from './contracts/stateStoreContract.js';
import {
  bodyOf,
  bytesOf,
  endlessBody,
  failingBody,
  md5Of,
  readAll,
  sampleAsset,
  sleep,
  workItems,
} from './contracts/support.js';
import { workQueueContract } from './contracts/workQueueContract.js';
import { createAwsTestBed, type AwsTestBed } from './support/awsTestBed.js';

const MiB = 1024 * 1024;
const VISIBILITY_SECONDS = 1;
/** moto's clock cannot be moved: the contract's queue hides messages long enough that a loaded box cannot outlast it. */
const CONTRACT_VISIBILITY_SECONDS = 5;

let bed: AwsTestBed;
beforeAll(async () => {
  bed = await createAwsTestBed({ visibilityTimeout: VISIBILITY_SECONDS });
});

const unique = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

async function newBucket(): Promise<string> {
  const bucket = unique('contract');
  await bed.clients.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  await bed.clients.s3.send(
    new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }),
  );
  return bucket;
}

async function newTable(): Promise<string> {
  const table = unique('contract');
  await bed.clients.dynamo.send(
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
  return table;
}

async function newQueues(
  visibilitySeconds = VISIBILITY_SECONDS,
): Promise<{ queueUrl: string; dlqUrl: string; queueArn: string }> {
  const name = unique('contract');
  const dlq = await bed.clients.sqs.send(new CreateQueueCommand({ QueueName: `${name}-dlq` }));
  const work = await bed.clients.sqs.send(
    new CreateQueueCommand({
      QueueName: name,
      Attributes: { VisibilityTimeout: String(visibilitySeconds) },
    }),
  );
  const queueUrl = work.QueueUrl ?? '';
  const attrs = await bed.clients.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }),
  );
  return { queueUrl, dlqUrl: dlq.QueueUrl ?? '', queueArn: attrs.Attributes?.QueueArn ?? '' };
}

/** Reads every message waiting in the DLQ, with its attributes. */
async function deadLetters(dlqUrl: string) {
  const answer = await bed.clients.sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: dlqUrl,
      MaxNumberOfMessages: 10,
      WaitTimeSeconds: 1,
      MessageAttributeNames: ['All'],
    }),
  );
  return answer.Messages ?? [];
}

/** Runs `handler` instead of the real call for commands named `commandName` (a client test double). */
function intercept<Input, Output>(
  client: { middlewareStack: { add: (...args: never[]) => void } },
  commandName: string,
  handler: (input: Input, next: (input: Input) => Promise<Output>) => Promise<Output>,
): void {
  type Args = { input: Input };
  type Next = (args: Args) => Promise<{ output: Output; response: unknown }>;
  const middleware = (next: Next, context: { commandName?: string }) => async (args: Args) => {
    if (context.commandName !== commandName) return next(args);
    let response: unknown;
    const output = await handler(args.input, async (input) => {
      const result = await next({ ...args, input });
      response = result.response;
      return result.output;
    });
    return { output, response };
  };
  (client.middlewareStack.add as unknown as (m: unknown, o: unknown) => void)(middleware, {
    step: 'initialize',
    name: `intercept-${commandName}-${randomUUID()}`,
  });
}

objectStoreContract('S3ObjectStore (moto)', async () => ({
  store: new S3ObjectStore({ s3: bed.clients.s3, bucket: await newBucket(), partSize: MIN_PART_BYTES }),
}));

stateStoreContract('DynamoStateStore (moto)', async (clock) => {
  const table = await newTable();
  return {
    // The test bed's moto serialises DynamoDB calls (test/support/moto_locked.py), like real DynamoDB.
    state: new DynamoStateStore({ dynamo: bed.clients.dynamo, table, now: clock.now }),
    cleanup: async () => {
      await bed.clients.dynamo.send(new DeleteTableCommand({ TableName: table }));
    },
  };
});

workQueueContract('SqsWorkQueue (moto)', async () => {
  const { queueUrl, dlqUrl } = await newQueues(CONTRACT_VISIBILITY_SECONDS);
  return {
    queue: new SqsWorkQueue({ sqs: bed.clients.sqs, queueUrl, dlqUrl }),
    visibilityTimeoutSeconds: CONTRACT_VISIBILITY_SECONDS,
    passTime: (seconds) => sleep(seconds * 1000),
    readDeadLetters: async () =>
      (await deadLetters(dlqUrl)).map((m) => ({
        item: JSON.parse(m.Body ?? '') as WorkItem,
        reason: m.MessageAttributes?.reason?.StringValue ?? '',
      })),
    cleanup: async () => {
      await bed.clients.sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl }));
      await bed.clients.sqs.send(new DeleteQueueCommand({ QueueUrl: dlqUrl }));
    },
  };
});

describe('S3ObjectStore leftovers', () => {
  it('discards the unfinished multipart uploads of one key, and only of that key', async () => {
    const bucket = await newBucket();
    const store = new S3ObjectStore({ s3: bed.clients.s3, bucket, partSize: MIN_PART_BYTES });
    const key = 'assets/video/upload/clip.mp4';
    for (const k of [key, key, `${key}.other`]) {
      await bed.clients.s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: k }));
    }

    // An object smaller than one part is never uploaded in parts: nothing to look for.
    await expect(store.discardIncomplete(key, 1000)).resolves.toBe(0);
    await expect(store.discardIncomplete(key)).resolves.toBe(2);
    const left = await bed.clients.s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));

    expect((left.Uploads ?? []).map((u) => u.Key)).toEqual([`${key}.other`]);
    await expect(store.discardIncomplete(key)).resolves.toBe(0);
  });
});

describe('S3ObjectStore resumable copies', () => {
  const key = 'assets/video/upload/resumed.mp4';

  it('a copy cut off after two parts keeps its upload open and its parts recorded; the next attempt sends only the rest', async () => {
    const bucket = await newBucket();
    const store = new S3ObjectStore({ s3: bed.clients.s3, bucket, partSize: 5 * MiB, queueSize: 1 });
    // The bytes failingBody sends, continued: its first 11 MiB arrive before the cut.
    const data = Buffer.concat(Array.from({ length: 52 }, (_, i) => bytesOf(256 * 1024, i * 256 * 1024 + 7)));
    const checkpoints: CopyCheckpoint[] = [];
    const expected = { bytes: data.length, md5: md5Of(data) };

    await expect(
      store.put(key, failingBody(11 * MiB), {
        metadata: {},
        sizeHint: data.length,
        expected,
        resumable: { version: 4, onCheckpoint: async (checkpoint) => void checkpoints.push(checkpoint) },
      }),
    ).rejects.toThrow('connection reset');
    const saved = checkpoints.at(-1);
    const from = await store.resume(key, 4, saved);
    const put = await store.put(key, bodyOf(data.subarray(from?.bytes)), {
      metadata: {},
      sizeHint: data.length,
      expected,
      resumable: { version: 4, from, onCheckpoint: async (checkpoint) => void checkpoints.push(checkpoint) },
    });
    const back = await readAll(await store.get(key));

    expect(saved).toMatchObject({ bytes: 10 * MiB, parts: [expect.any(String), expect.any(String)] });
    expect(from).toEqual(saved);
    expect(put).toMatchObject({ bytes: data.length, md5: md5Of(data) });
    expect(checkpoints.map((checkpoint) => checkpoint.bytes)).toEqual([5 * MiB, 10 * MiB, 13 * MiB]);
    expect(back.equals(data)).toBe(true);
    expect(
      (await bed.clients.s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? [],
    ).toEqual([]);
  });

  it('a copy cut off mid-part continues after the last byte this machine received: the part it was reading is kept on disk, not fetched again', async () => {
    const bucket = await newBucket();
    const spillDir = await mkdtemp(join(tmpdir(), 'spill-'));
    const store = new S3ObjectStore({
      s3: bed.clients.s3,
      bucket,
      partSize: 5 * MiB,
      queueSize: 1,
      spillDir,
    });
    const data = Buffer.concat(Array.from({ length: 52 }, (_, i) => bytesOf(256 * 1024, i * 256 * 1024 + 7)));
    const checkpoints: CopyCheckpoint[] = [];
    const expected = { bytes: data.length, md5: md5Of(data) };
    const onCheckpoint = async (checkpoint: CopyCheckpoint) => void checkpoints.push(checkpoint);

    // Cut off 1 MiB into the third part: two parts recorded, the third one's first MiB kept.
    await expect(
      store.put(key, failingBody(11 * MiB), {
        metadata: {},
        sizeHint: data.length,
        expected,
        resumable: { version: 4, onCheckpoint },
      }),
    ).rejects.toThrow('connection reset');
    const saved = checkpoints.at(-1);
    const from = await store.resume(key, 4, saved, data.length);
    const continuedAt = (from?.bytes ?? 0) + (from?.spilled ?? 0);
    const put = await store.put(key, bodyOf(data.subarray(continuedAt)), {
      metadata: {},
      sizeHint: data.length,
      expected,
      resumable: { version: 4, from, onCheckpoint },
    });
    const back = await readAll(await store.get(key));

    expect(from).toEqual({ ...saved, spilled: MiB });
    expect(continuedAt).toBe(11 * MiB);
    expect(put).toMatchObject({ bytes: data.length, md5: md5Of(data) });
    expect(checkpoints.map((checkpoint) => checkpoint.bytes)).toEqual([5 * MiB, 10 * MiB, 13 * MiB]);
    expect(checkpoints.every((checkpoint) => checkpoint.spilled === undefined)).toBe(true);
    expect(back.equals(data)).toBe(true);
    expect(await readdir(spillDir)).toEqual([]);
    await rm(spillDir, { recursive: true });
  });

  it('a copy cut off inside its first part continues from the bytes kept on disk; another version starts over', async () => {
    const bucket = await newBucket();
    const spillDir = await mkdtemp(join(tmpdir(), 'spill-'));
    const store = new S3ObjectStore({
      s3: bed.clients.s3,
      bucket,
      partSize: 5 * MiB,
      queueSize: 1,
      spillDir,
    });
    const data = Buffer.concat(Array.from({ length: 52 }, (_, i) => bytesOf(256 * 1024, i * 256 * 1024 + 7)));
    const expected = { bytes: data.length, md5: md5Of(data) };

    await expect(
      store.put(key, failingBody(3 * MiB), {
        metadata: {},
        sizeHint: data.length,
        expected,
        resumable: { version: 4 },
      }),
    ).rejects.toThrow('connection reset');
    const otherVersion = await store.resume(key, 5, undefined, data.length);
    const from = await store.resume(key, 4, undefined, data.length);
    const put = await store.put(key, bodyOf(data.subarray(from?.spilled)), {
      metadata: {},
      sizeHint: data.length,
      expected,
      resumable: { version: 4, from },
    });

    expect(otherVersion).toBeUndefined();
    expect(from).toEqual({ key, version: 4, bytes: 0, partSize: 5 * MiB, spilled: 3 * MiB });
    expect(put).toMatchObject({ bytes: data.length, md5: md5Of(data) });
    expect((await readAll(await store.get(key))).equals(data)).toBe(true);
    expect(await readdir(spillDir)).toEqual([]);
    await rm(spillDir, { recursive: true });
  });

  it('a checkpoint of another version, or whose parts S3 no longer has, is dropped and its upload aborted', async () => {
    const bucket = await newBucket();
    const store = new S3ObjectStore({ s3: bed.clients.s3, bucket, partSize: 5 * MiB, queueSize: 1 });
    const checkpoints: CopyCheckpoint[] = [];
    await expect(
      store.put(key, failingBody(6 * MiB), {
        metadata: {},
        sizeHint: 20 * MiB,
        resumable: { version: 4, onCheckpoint: async (checkpoint) => void checkpoints.push(checkpoint) },
      }),
    ).rejects.toThrow('connection reset');
    const saved = checkpoints.at(-1);

    const tampered = saved && { ...saved, parts: ['"0123"'] };
    await expect(store.resume(key, 4, tampered)).resolves.toBeUndefined();
    const leftAfterTamper = (await bed.clients.s3.send(new ListMultipartUploadsCommand({ Bucket: bucket })))
      .Uploads;
    await expect(store.resume(key, 5, saved)).resolves.toBeUndefined();

    expect(saved?.bytes).toBe(5 * MiB);
    expect(leftAfterTamper ?? []).toEqual([]);
  });

  it('DynamoStateStore keeps, returns and drops a copy checkpoint beside the asset state', async () => {
    const table = await newTable();
    const state = new DynamoStateStore({ dynamo: bed.clients.dynamo, table });
    const checkpoint: CopyCheckpoint = {
      key,
      version: 4,
      bytes: 10 * MiB,
      md5State: 'AAAA',
      uploadId: 'upload-1',
      partSize: 5 * MiB,
      parts: Array.from({ length: 10_000 }, (_, i) => `"${md5Of(String(i))}" AAAAAA==`),
    };

    await state.saveCheckpoint('video/upload/resumed', checkpoint);
    const back = await state.getCheckpoint('video/upload/resumed');
    const listed = [];
    for await (const asset of state.listAssets()) listed.push(asset);
    await state.dropCheckpoint('video/upload/resumed');

    expect(back).toEqual(checkpoint);
    expect(listed).toEqual([]);
    await expect(state.getCheckpoint('video/upload/resumed')).resolves.toBeUndefined();
  });
});

describe('S3ObjectStore', () => {
  async function traces(bucket: string, key: string) {
    const versions = await bed.clients.s3.send(
      new ListObjectVersionsCommand({ Bucket: bucket, Prefix: key }),
    );
    const uploads = await bed.clients.s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    return {
      versions: (versions.Versions ?? []).length + (versions.DeleteMarkers ?? []).length,
      uploads: (uploads.Uploads ?? []).length,
    };
  }

  it('a body that fails after 12 MiB of a multipart upload leaves no object, version or unfinished upload', async () => {
    const bucket = await newBucket();
    const store = new S3ObjectStore({ s3: bed.clients.s3, bucket, partSize: 5 * MiB });

    await expect(
      store.put('assets/video/upload/big.mp4', failingBody(12 * MiB), { metadata: {} }),
    ).rejects.toThrow('connection reset');

    await expect(store.head('assets/video/upload/big.mp4')).resolves.toBeUndefined();
    expect(await traces(bucket, 'assets/')).toEqual({ versions: 0, uploads: 0 });
  });

  it('a small body that fails before its first part is sent leaves no object', async () => {
    const bucket = await newBucket();
    const store = new S3ObjectStore({ s3: bed.clients.s3, bucket });

    await expect(
      store.put('assets/image/upload/small.jpg', failingBody(1000), { metadata: {} }),
    ).rejects.toThrow();

    expect(await traces(bucket, 'assets/')).toEqual({ versions: 0, uploads: 0 });
  });

  it('an abort during a multipart upload leaves no object, version or unfinished upload', async () => {
    const bucket = await newBucket();
    const store = new S3ObjectStore({ s3: bed.clients.s3, bucket, partSize: 5 * MiB });
    const abort = new AbortController();
    const put = store.put('assets/video/upload/long.mp4', endlessBody(1 * MiB, 1), {
      metadata: {},
      signal: abort.signal,
    });

    await sleep(400);
    abort.abort(new Error('deadline'));

    await expect(put).rejects.toThrow('deadline');
    expect(await traces(bucket, 'assets/')).toEqual({ versions: 0, uploads: 0 });
  });

  it('a multipart upload stores every byte and records the MD5 of the whole object', async () => {
    const bucket = await newBucket();
    const store = new S3ObjectStore({ s3: bed.clients.s3, bucket, partSize: 5 * MiB });
    const data = bytesOf(11 * MiB, 9);

    const put = await store.put('assets/video/upload/three-parts.mp4', bodyOf(data), { metadata: {} });
    const head = await store.head('assets/video/upload/three-parts.mp4');
    const back = await readAll(await store.get('assets/video/upload/three-parts.mp4'));

    expect(put).toMatchObject({ bytes: data.length, md5: md5Of(data) });
    expect(head?.etag).toMatch(/-3$/u);
    expect(head?.md5).toBe(md5Of(data));
    expect(back.equals(data)).toBe(true);
  });

  it('a size hint for a huge asset makes parts large enough for S3 to take it in 10,000 parts', async () => {
    const bucket = await newBucket();
    const store = new S3ObjectStore({ s3: bed.clients.s3, bucket, partSize: 5 * MiB });
    const data = bytesOf(12 * MiB, 10);

    await store.put('assets/video/upload/hinted.mp4', bodyOf(data), {
      metadata: {},
      sizeHint: 70 * 1024 * MiB,
    });
    const head = await store.head('assets/video/upload/hinted.mp4');

    // 70 GiB over 10,000 parts needs 8 MiB parts: 12 MiB then goes up in two parts, not three.
    expect(head?.etag).toMatch(/-2$/u);
  });

  it('part sizes stay at the minimum for ordinary assets and grow for huge ones', () => {
    expect(partSizeFor(100 * MiB)).toBe(5 * MiB);
    expect(partSizeFor(5 * 1024 * MiB)).toBe(5 * MiB);
    expect(partSizeFor(100 * 1024 * MiB)).toBe(11 * MiB);
    expect(partSizeFor(100 * MiB, 8 * MiB)).toBe(8 * MiB);
    expect(Math.ceil((5 * 1024 * 1024 * MiB) / partSizeFor(5 * 1024 * 1024 * MiB))).toBeLessThanOrEqual(
      10_000,
    );
    expect(() => partSizeFor(6 * 1024 * 1024 * MiB)).toThrow('5 TiB');
  });

  it('tags the new version with its MD5 when the metadata did not carry one', async () => {
    const bucket = await newBucket();
    const store = new S3ObjectStore({ s3: bed.clients.s3, bucket });
    const data = bytesOf(2000, 11);

    const put = await store.put('assets/image/upload/tagged.jpg', bodyOf(data), { metadata: {} });
    const tags = await bed.clients.s3.send(
      new GetObjectTaggingCommand({
        Bucket: bucket,
        Key: 'assets/image/upload/tagged.jpg',
        VersionId: put.versionId,
      }),
    );

    expect(tags.TagSet).toEqual([{ Key: 'md5', Value: md5Of(data) }]);
  });

  it('keeps every version of a key', async () => {
    const bucket = await newBucket();
    const store = new S3ObjectStore({ s3: bed.clients.s3, bucket });

    const first = await store.put('assets/image/upload/v.jpg', bodyOf(bytesOf(10, 1)), { metadata: {} });
    const second = await store.put('assets/image/upload/v.jpg', bodyOf(bytesOf(10, 2)), { metadata: {} });
    const versions = await bed.clients.s3.send(new ListObjectVersionsCommand({ Bucket: bucket }));

    expect(versions.Versions?.map((v) => v.VersionId).sort()).toEqual(
      [first.versionId, second.versionId].sort(),
    );
  });

  it('an MD5 in the metadata that does not match the bytes fails the put and stores nothing', async () => {
    const bucket = await newBucket();
    const store = new S3ObjectStore({ s3: bed.clients.s3, bucket });

    const put = store.put('assets/image/upload/lie.jpg', bodyOf(bytesOf(1000)), {
      metadata: { [META.md5]: md5Of('something else') },
    });

    await expect(put).rejects.toBeInstanceOf(IntegrityError);
    expect(await traces(bucket, 'assets/')).toEqual({ versions: 0, uploads: 0 });
  });

  it('metadata that HTTP headers would mangle is refused before anything is sent', async () => {
    const bucket = await newBucket();
    const store = new S3ObjectStore({ s3: bed.clients.s3, bucket });
    const put = (metadata: Record<string, string>) =>
      store.put('assets/image/upload/meta.jpg', bodyOf(bytesOf(10)), { metadata });

    await expect(put({ [META.publicId]: 'café' })).rejects.toThrow('printable ASCII');
    await expect(put({ [META.publicId]: ' padded' })).rejects.toThrow('leading or trailing');
    await expect(put({ PublicId: 'x' })).rejects.toThrow('lowercase');
    await expect(put({ big: 'x'.repeat(3000) })).rejects.toThrow('2048');
    await expect(put({ [META.md5]: 'not-a-checksum' })).rejects.toThrow('32 hexadecimal digits');
    expect(await traces(bucket, 'assets/')).toEqual({ versions: 0, uploads: 0 });
  });

  it('lists keys across pages', async () => {
    const bucket = await newBucket();
    const store = new S3ObjectStore({ s3: bed.clients.s3, bucket, listPageSize: 2 });
    for (let i = 0; i < 5; i++)
      await store.put(`assets/raw/upload/${i}.txt`, bodyOf(bytesOf(i + 1)), { metadata: {} });

    const keys: string[] = [];
    for await (const object of store.list('assets/raw/')) keys.push(object.key);

    expect(keys).toEqual([0, 1, 2, 3, 4].map((i) => `assets/raw/upload/${i}.txt`));
  });

  it('a missing bucket is a fatal error that names the bucket', async () => {
    const store = new S3ObjectStore({ s3: bed.clients.s3, bucket: 'no-such-bucket-anywhere' });

    const errors = [
      await store.put('assets/a.jpg', bodyOf(bytesOf(10)), { metadata: {} }).catch((e: unknown) => e),
      await store.head('assets/a.jpg').catch((e: unknown) => e),
      await store.get('assets/a.jpg').catch((e: unknown) => e),
      await (async () => {
        for await (const _ of store.list('assets/')) return undefined;
      })().catch((e: unknown) => e),
    ];

    for (const error of errors) {
      expect(error).toBeInstanceOf(FatalError);
      expect((error as Error).message).toContain('"no-such-bucket-anywhere" does not exist');
      expect((error as Error).message).not.toContain(process.env.AWS_SECRET_ACCESS_KEY);
    }
  });

  it('throttling and server errors are retryable, access denied is fatal', async () => {
    const s3 = createAwsClients().s3;
    const failures = [
      new S3ServiceException({
        name: 'SlowDown',
        $fault: 'server',
        $metadata: { httpStatusCode: 503 },
        message: 'Reduce your request rate.',
      }),
      new S3ServiceException({
        name: 'InternalError',
        $fault: 'server',
        $metadata: { httpStatusCode: 500 },
        message: 'We encountered an internal error.',
      }),
      new S3ServiceException({
        name: 'AccessDenied',
        $fault: 'client',
        $metadata: { httpStatusCode: 403 },
        message: 'Access Denied',
      }),
    ];
    let next = 0;
    intercept(s3, 'HeadObjectCommand', async () => {
      throw failures[next++];
    });
    const store = new S3ObjectStore({ s3, bucket: await newBucket() });

    const errors = [];
    for (let i = 0; i < failures.length; i++)
      errors.push(await store.head('assets/x.jpg').catch((e: unknown) => e));

    expect(errors[0]).toBeInstanceOf(RetryableError);
    expect(errors[1]).toBeInstanceOf(RetryableError);
    expect(errors[2]).toBeInstanceOf(FatalError);
    expect((errors[2] as Error).message).toMatch(
      /denied access to bucket ".+" \(reading assets\/x.jpg\): check the AWS credentials/u,
    );
  });
});

describe('DynamoStateStore', () => {
  it('keeps asset states at pk ASSET#<id>, sk STATE and runs at pk RUN, sk <runId>', async () => {
    const table = await newTable();
    const state = new DynamoStateStore({ dynamo: bed.clients.dynamo, table });
    const ref = { resourceType: 'image' as const, deliveryType: 'upload', publicId: 'folder/photo' };
    await state.recordReplicated({
      ...ref,
      id: assetIdOf(ref),
      version: 1,
      bytes: 10,
      objectKey: 'assets/image/upload/folder/photo.jpg',
      status: 'replicated',
      attempts: 0,
    });
    await state.putRun({
      runId: 'run-a',
      phase: 'listing',
      listings: {},
      counters: {
        listed: 0,
        enqueued: 0,
        skipped: 0,
        replicated: 0,
        failed: 0,
        deleted: 0,
        bytes: 0,
        adminCalls: 0,
        settled: 0,
      },
      startedAt: 'x',
      updatedAt: 'x',
    });

    const asset = await bed.clients.dynamo.send(
      new GetItemCommand({ TableName: table, Key: assetKey('image/upload/folder/photo') }),
    );
    const run = await bed.clients.dynamo.send(new GetItemCommand({ TableName: table, Key: runKey('run-a') }));

    expect(assetKey('image/upload/folder/photo')).toEqual({
      pk: { S: 'ASSET#image/upload/folder/photo' },
      sk: { S: 'STATE' },
    });
    expect(asset.Item?.status).toEqual({ S: 'replicated' });
    expect(run.Item?.pk).toEqual({ S: 'RUN' });
    expect(run.Item?.counters?.M?.listed).toEqual({ N: '0' });
  });

  async function seeded(count: number): Promise<{ table: string; ids: string[] }> {
    const table = await newTable();
    const state = new DynamoStateStore({ dynamo: bed.clients.dynamo, table });
    const records = Array.from({ length: count }, (_, i): AssetState => {
      const ref = { resourceType: 'image' as const, deliveryType: 'upload', publicId: `p/${i}` };
      return {
        ...ref,
        id: assetIdOf(ref),
        version: 1,
        bytes: i,
        objectKey: `k${i}`,
        status: 'replicated',
        attempts: 0,
      };
    });
    await Promise.all(records.map((record) => state.recordReplicated(record)));
    return { table, ids: records.map((record) => record.id) };
  }

  it('keys DynamoDB leaves unprocessed are asked for again until every state is read', async () => {
    const { table, ids } = await seeded(120);
    const dynamo = createAwsClients().dynamo;
    const requestSizes: number[] = [];
    intercept<BatchGetItemCommandInput, BatchGetItemCommandOutput>(
      dynamo,
      'BatchGetItemCommand',
      async (input, send) => {
        const request = input.RequestItems?.[table];
        const keys = request?.Keys ?? [];
        requestSizes.push(keys.length);
        // Like a throttled table: the first requests get only a third of their keys served.
        const served = requestSizes.length <= 4 ? keys.slice(0, Math.ceil(keys.length / 3)) : keys;
        const output = await send({ RequestItems: { [table]: { ...request, Keys: served } } });
        const rest = keys.slice(served.length);
        return { ...output, UnprocessedKeys: rest.length ? { [table]: { ...request, Keys: rest } } : {} };
      },
    );
    const state = new DynamoStateStore({ dynamo, table, backoffMs: 1 });

    const found = await state.getMany(ids);

    expect(found.size).toBe(120);
    expect(Math.max(...requestSizes)).toBeLessThanOrEqual(100);
    expect(requestSizes.length).toBeGreaterThan(2);
  });

  it('keys that stay unprocessed become a retryable error after a bounded number of tries', async () => {
    const { table, ids } = await seeded(3);
    const dynamo = createAwsClients().dynamo;
    let calls = 0;
    intercept<BatchGetItemCommandInput, BatchGetItemCommandOutput>(
      dynamo,
      'BatchGetItemCommand',
      async (input) => {
        calls++;
        return { $metadata: {}, Responses: { [table]: [] }, UnprocessedKeys: input.RequestItems };
      },
    );
    const state = new DynamoStateStore({ dynamo, table, backoffMs: 1, maxBatchAttempts: 4 });

    await expect(state.getMany(ids)).rejects.toBeInstanceOf(RetryableError);
    expect(calls).toBe(4);
  });

  it('a missing table is a fatal error that names the table', async () => {
    const state = new DynamoStateStore({ dynamo: bed.clients.dynamo, table: 'no-such-table' });

    const errors = [
      await state.getMany(['image/upload/x']).catch((e: unknown) => e),
      await state
        .acquireLease({ resourceType: 'image', deliveryType: 'upload', publicId: 'x' }, 1, 'w', 1000)
        .catch((e: unknown) => e),
      await state.latestRun().catch((e: unknown) => e),
    ];

    for (const error of errors) {
      expect(error).toBeInstanceOf(FatalError);
      expect((error as Error).message).toContain('table "no-such-table" was not found');
    }
  });

  it('throttling is retryable', async () => {
    const dynamo = new DynamoDBClient({});
    intercept(dynamo, 'GetItemCommand', async () => {
      throw new DynamoDBServiceException({
        name: 'ProvisionedThroughputExceededException',
        $fault: 'client',
        $metadata: { httpStatusCode: 400 },
        message: 'The level of configured provisioned throughput for the table was exceeded.',
      });
    });
    const state = new DynamoStateStore({ dynamo, table: await newTable() });

    await expect(state.getRun('run')).rejects.toBeInstanceOf(RetryableError);
  });
});

describe('SqsWorkQueue', () => {
  it("a batch's heartbeat goes out as one request, and keeps every message hidden", async () => {
    const { queueUrl } = await newQueues();
    const sqs = createAwsClients().sqs;
    const requests: number[] = [];
    intercept<ChangeMessageVisibilityBatchCommandInput, ChangeMessageVisibilityBatchCommandOutput>(
      sqs,
      'ChangeMessageVisibilityBatchCommand',
      async (input, send) => {
        requests.push(input.Entries?.length ?? 0);
        return send(input);
      },
    );
    const queue = new SqsWorkQueue({ sqs, queueUrl });
    await queue.sendBatch(workItems(10));
    const received: ReceivedWork[] = [];
    while (received.length < 10) received.push(...(await queue.receive(10 - received.length, 1)));

    await Promise.all(received.map((work) => queue.extendVisibility(work, 60)));
    await sleep(VISIBILITY_SECONDS * 1000 + 300);

    expect(requests).toEqual([10]);
    expect(await queue.receive(10, 0)).toEqual([]);
  });

  it('entries SQS fails in a batch are sent again until every item arrives', async () => {
    const { queueUrl } = await newQueues();
    const sqs = createAwsClients().sqs;
    const attempts: number[] = [];
    intercept<SendMessageBatchCommandInput, SendMessageBatchCommandOutput>(
      sqs,
      'SendMessageBatchCommand',
      async (input, send) => {
        const entries = input.Entries ?? [];
        attempts.push(entries.length);
        if (attempts.length > 1) return send(input);
        // The first request: SQS takes three entries and fails the rest with a server fault.
        const output = await send({ ...input, Entries: entries.slice(0, 3) });
        const failed = entries.slice(3).map((e) => ({ Id: e.Id, SenderFault: false, Code: 'InternalError' }));
        return { ...output, Failed: failed };
      },
    );
    const queue = new SqsWorkQueue({ sqs, queueUrl, backoffMs: 1 });

    await queue.sendBatch(workItems(10));
    const reader = new SqsWorkQueue({ sqs: bed.clients.sqs, queueUrl });
    const received: ReceivedWork[] = [];
    while (received.length < 10) {
      const page = await reader.receive(10, 1);
      if (page.length === 0) break;
      received.push(...page);
    }

    expect(attempts).toEqual([10, 7]);
    expect(received.map((w) => w.item.asset.publicId).sort()).toEqual(
      workItems(10)
        .map((i) => i.asset.publicId)
        .sort(),
    );
  });

  it('entries that keep failing become a retryable error after a bounded number of tries', async () => {
    const { queueUrl } = await newQueues();
    const sqs = createAwsClients().sqs;
    let calls = 0;
    intercept<SendMessageBatchCommandInput, SendMessageBatchCommandOutput>(
      sqs,
      'SendMessageBatchCommand',
      async (input) => {
        calls++;
        return {
          $metadata: {},
          Successful: [],
          Failed: (input.Entries ?? []).map((e) => ({
            Id: e.Id,
            SenderFault: false,
            Code: 'ServiceUnavailable',
          })),
        };
      },
    );
    const queue = new SqsWorkQueue({ sqs, queueUrl, backoffMs: 1, maxSendAttempts: 3 });

    await expect(queue.sendBatch(workItems(2))).rejects.toBeInstanceOf(RetryableError);
    expect(calls).toBe(3);
  });

  it('keeps each request under 256 KiB by spreading large items over more requests', async () => {
    const { queueUrl } = await newQueues();
    const sqs = createAwsClients().sqs;
    const sizes: number[] = [];
    intercept<SendMessageBatchCommandInput, SendMessageBatchCommandOutput>(
      sqs,
      'SendMessageBatchCommand',
      async (input, send) => {
        sizes.push((input.Entries ?? []).reduce((sum, e) => sum + Buffer.byteLength(e.MessageBody ?? ''), 0));
        return send(input);
      },
    );
    const queue = new SqsWorkQueue({ sqs, queueUrl });
    const items = Array.from({ length: 5 }, (_, i) => ({
      runId: 'run',
      asset: sampleAsset(`large-${i}`, { context: { note: 'x'.repeat(100 * 1024) } }),
    }));

    await queue.sendBatch(items);

    expect(sizes).toHaveLength(3);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(256 * 1024);
  });

  it('an item over 256 KiB is refused with a clear error and nothing is sent', async () => {
    const { queueUrl } = await newQueues();
    const queue = new SqsWorkQueue({ sqs: bed.clients.sqs, queueUrl });
    const huge = { runId: 'run', asset: sampleAsset('huge', { context: { note: 'x'.repeat(300 * 1024) } }) };

    await expect(queue.sendBatch([...workItems(3), huge])).rejects.toThrow(
      /huge is \d+ bytes as JSON; SQS takes at most 262144/u,
    );
    await expect(queue.receive(10, 0)).resolves.toEqual([]);
  });

  it('a dead letter carries the reason (redacted, at most 1,000 characters), the receive count and when it failed', async () => {
    const { queueUrl, dlqUrl } = await newQueues();
    const queue = new SqsWorkQueue({ sqs: bed.clients.sqs, queueUrl, dlqUrl });
    await queue.sendBatch(workItems(1));
    const [work] = await queue.receive(1, 1);
    const reason = `download failed: https://res.cloudinary.com/x?signature=abcdef123 ${'y'.repeat(2000)}`;

    await queue.deadLetter(work as ReceivedWork, reason);
    const [letter] = await deadLetters(dlqUrl);

    const attributes = letter?.MessageAttributes ?? {};
    expect(JSON.parse(letter?.Body ?? '')).toEqual(work?.item);
    expect(attributes.reason?.StringValue).toContain('signature=***');
    expect(attributes.reason?.StringValue).not.toContain('abcdef123');
    expect(attributes.reason?.StringValue?.length).toBeLessThanOrEqual(1000);
    expect(attributes.receiveCount).toMatchObject({ DataType: 'Number', StringValue: '1' });
    expect(Date.parse(attributes.failedAt?.StringValue ?? '')).toBeGreaterThan(Date.now() - 60_000);
  });

  it('a message that is not a work item goes straight to the DLQ instead of being retried', async () => {
    const { queueUrl, dlqUrl } = await newQueues();
    const queue = new SqsWorkQueue({ sqs: bed.clients.sqs, queueUrl, dlqUrl });
    await bed.clients.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'not json {' }));

    const received = await queue.receive(10, 1);
    const [letter] = await deadLetters(dlqUrl);

    expect(received).toEqual([]);
    expect(letter?.Body).toBe('not json {');
    expect(letter?.MessageAttributes?.reason?.StringValue).toContain('not JSON');
  });

  it('a Lambda event built from received messages turns back into the same work', async () => {
    const { queueUrl, queueArn } = await newQueues();
    const queue = new SqsWorkQueue({ sqs: bed.clients.sqs, queueUrl });
    await queue.sendBatch(workItems(3));
    const answer = await bed.clients.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
        MessageSystemAttributeNames: ['All'],
      }),
    );

    const event = sqsEventFromMessages(answer.Messages ?? [], queueArn);
    const work = event.Records.map(workFromSqsRecord);

    expect(event.Records).toHaveLength(3);
    expect(event.Records[0]).toMatchObject({
      eventSource: 'aws:sqs',
      eventSourceARN: queueArn,
      awsRegion: 'us-east-1',
    });
    expect(event.Records[0]?.md5OfBody).toBe(md5Of(event.Records[0]?.body ?? ''));
    expect(work.map((w) => w.receiveCount)).toEqual([1, 1, 1]);
    expect(work.map((w) => w.item.asset.publicId).sort()).toEqual(
      workItems(3)
        .map((i) => i.asset.publicId)
        .sort(),
    );
    expect(work[0]?.receiptHandle).toBe(answer.Messages?.[0]?.ReceiptHandle);
    // The same receipt handles acknowledge the messages.
    for (const w of work) await queue.ack(w);
    await expect(queue.receive(10, 0)).resolves.toEqual([]);
  });

  it('an event record that is not a work item is refused as permanent', () => {
    const [record] = sqsEventFromMessages(
      [{ MessageId: 'm1', ReceiptHandle: 'r1', Body: '{"hello":1}' }],
      'arn:aws:sqs:eu-west-1:123456789012:q',
    ).Records;

    expect(() => workFromSqsRecord(record as NonNullable<typeof record>)).toThrow(PermanentAssetError);
  });

  it('a missing queue is a fatal error that names the queue', async () => {
    const queueUrl = `${bed.endpoint}/123456789012/no-such-queue`;
    const queue = new SqsWorkQueue({ sqs: bed.clients.sqs, queueUrl });

    const error: unknown = await queue.receive(1, 0).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(FatalError);
    expect((error as Error).message).toContain(`${queueUrl} does not exist`);
  });

  it('dead-lettering without a DLQ configured is a configuration error', async () => {
    const { queueUrl } = await newQueues();
    const queue = new SqsWorkQueue({ sqs: bed.clients.sqs, queueUrl });
    await queue.sendBatch(workItems(1));
    const [work] = await queue.receive(1, 1);

    await expect(queue.deadLetter(work as ReceivedWork, 'x')).rejects.toBeInstanceOf(ConfigError);
  });
});

import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { PurgeQueueCommand } from '@aws-sdk/client-sqs';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DynamoNotificationLedger } from '../shared/aws/DynamoNotificationLedger.js';
import { DynamoStateStore } from '../shared/aws/DynamoStateStore.js';
import { SqsWorkQueue } from '../shared/aws/SqsWorkQueue.js';
import { DEFAULT_SETTINGS } from '../shared/config.js';
import type { Log } from '../shared/engine/log.js';
import {
  handleNotification,
  MAX_AGE_SECONDS,
  MAX_BODY_BYTES,
  notificationSignature,
  type SignatureAlgorithm,
  type WebhookDeps,
} from '../shared/webhook/index.js';
import { assetState } from './support/assetFactories.js';
import { createAwsTestBed, type AwsTestBed } from './support/awsTestBed.js';

const SECRET = 'notif-secret-5f1e';
const NOW = new Date('2026-05-04T12:00:00Z');
const SECONDS = Math.floor(NOW.getTime() / 1000);

let bed: AwsTestBed;
let state: DynamoStateStore;
let queue: SqsWorkQueue;
let logged: string[];

const log: Log = {
  debug: (m, e) => logged.push(JSON.stringify([m, e])),
  info: (m, e) => logged.push(JSON.stringify([m, e])),
  warn: (m, e) => logged.push(JSON.stringify([m, e])),
  error: (m, e) => logged.push(JSON.stringify([m, e])),
};

function deps(algorithm: SignatureAlgorithm = 'sha1'): WebhookDeps {
  return {
    apiSecret: SECRET,
    algorithm,
    state,
    queue,
    ledger: new DynamoNotificationLedger(bed.clients.dynamo, bed.table),
    settings: DEFAULT_SETTINGS,
    now: () => NOW,
    log,
  };
}

/** A notification as Cloudinary sends it: the body, its timestamp, the signature over both and the secret. */
function signed(
  payload: unknown,
  { at = SECONDS, algorithm = 'sha1' as SignatureAlgorithm, secret = SECRET } = {},
) {
  const body = Buffer.from(JSON.stringify(payload));
  const timestamp = String(at);
  return {
    method: 'POST',
    body,
    headers: {
      'x-cld-timestamp': timestamp,
      'x-cld-signature': notificationSignature(body, timestamp, secret, algorithm),
    },
  };
}

function upload(publicId: string, version: number, extra: Record<string, unknown> = {}) {
  return {
    notification_type: 'upload',
    asset_id: `id-${publicId}`,
    public_id: publicId,
    version,
    resource_type: 'image',
    type: 'upload',
    format: 'jpg',
    bytes: 1234,
    etag: '0123456789abcdef0123456789abcdef',
    created_at: '2026-05-04T11:59:00Z',
    secure_url: `https://res.cloudinary.com/demo/image/upload/v${version}/${publicId}.jpg`,
    ...extra,
  };
}

async function queued(): Promise<Array<{ runId: string; publicId: string; version: number }>> {
  const received = await queue.receive(10, 0);
  for (const work of received) await queue.ack(work);
  return received.map((w) => ({
    runId: w.item.runId,
    publicId: w.item.asset.publicId,
    version: w.item.asset.version,
  }));
}

beforeAll(async () => {
  bed = await createAwsTestBed();
  state = new DynamoStateStore({ dynamo: bed.clients.dynamo, table: bed.table });
  queue = new SqsWorkQueue({ sqs: bed.clients.sqs, queueUrl: bed.queueUrl, dlqUrl: bed.dlqUrl });
});

beforeEach(async () => {
  logged = [];
  await bed.clients.sqs.send(new PurgeQueueCommand({ QueueUrl: bed.queueUrl }));
});

describe('notifications that are not validly signed, recent Cloudinary notifications', () => {
  it('a forged signature is answered 401, enqueues nothing and logs neither body nor signature', async () => {
    const request = signed(upload('forged', 100), { secret: 'not-the-secret' });
    const response = await handleNotification(deps(), request);
    expect(response.status).toBe(401);
    expect(await queued()).toEqual([]);
    const log = logged.join('\n');
    expect(log).toContain('forged');
    expect(log).not.toContain(request.headers['x-cld-signature']);
    expect(log).not.toContain('public_id');
    expect(log).not.toContain(SECRET);
    expect(response.body).not.toContain(SECRET);
  });

  it('a body changed after signing is answered 401', async () => {
    const request = signed(upload('tampered', 100));
    const response = await handleNotification(deps(), {
      ...request,
      body: Buffer.from(request.body.toString().replace('tampered', 'tampered2')),
    });
    expect(response.status).toBe(401);
  });

  it('missing headers are answered 401', async () => {
    const request = signed(upload('bare', 100));
    const response = await handleNotification(deps(), { ...request, headers: {} });
    expect(response.status).toBe(401);
  });

  it(`a timestamp more than ${MAX_AGE_SECONDS / 60} minutes old, or from the future, is answered 401`, async () => {
    const stale = await handleNotification(
      deps(),
      signed(upload('stale', 100), { at: SECONDS - MAX_AGE_SECONDS - 1 }),
    );
    expect(stale.status).toBe(401);
    expect(logged.join('\n')).toContain('stale');
    const future = await handleNotification(deps(), signed(upload('future', 100), { at: SECONDS + 3600 }));
    expect(future.status).toBe(401);
    expect(await queued()).toEqual([]);
  });

  it('a retry that still carries the first try’s timestamp, ten minutes later, is accepted', async () => {
    const response = await handleNotification(
      deps(),
      signed(upload('late-retry', 100), { at: SECONDS - 600 }),
    );
    expect(response.status).toBe(200);
    expect(await queued()).toEqual([{ runId: 'webhook', publicId: 'late-retry', version: 100 }]);
  });

  it('an oversized body is answered 413 before it is verified or parsed', async () => {
    const request = signed({ notification_type: 'upload', padding: 'x'.repeat(MAX_BODY_BYTES) });
    const response = await handleNotification(deps(), request);
    expect(response.status).toBe(413);
    expect(logged.join('\n')).not.toContain('xxxx');
  });

  it('a SHA-1 signature is refused where the account signs with SHA-256, and a SHA-256 one accepted', async () => {
    const sha1 = await handleNotification(deps('sha256'), signed(upload('algo', 100)));
    expect(sha1.status).toBe(401);
    const sha256 = await handleNotification(
      deps('sha256'),
      signed(upload('algo', 100), { algorithm: 'sha256' }),
    );
    expect(sha256.status).toBe(200);
    expect(await queued()).toHaveLength(1);
  });

  it('anything but POST is answered 405', async () => {
    const response = await handleNotification(deps(), { ...signed(upload('get', 1)), method: 'GET' });
    expect(response.status).toBe(405);
  });
});

describe('signed notifications', () => {
  it('an upload enqueues one normal work item and answers 200', async () => {
    const response = await handleNotification(deps(), signed(upload('fresh', 100)));
    expect(response.status).toBe(200);
    expect(response.outcomes).toEqual(['enqueued']);
    const [work] = await queue.receive(1, 0);
    expect(work?.item).toEqual({
      runId: 'webhook',
      asset: {
        resourceType: 'image',
        deliveryType: 'upload',
        publicId: 'fresh',
        assetId: 'id-fresh',
        version: 100,
        bytes: 1234,
        format: 'jpg',
        etag: '0123456789abcdef0123456789abcdef',
        createdAt: '2026-05-04T11:59:00Z',
        secureUrl: 'https://res.cloudinary.com/demo/image/upload/v100/fresh.jpg',
      },
    });
    if (work) await queue.ack(work);
  });

  it('a replayed notification of a version already copied enqueues nothing', async () => {
    await state.recordReplicated(assetState({ id: 'image/upload/done', publicId: 'done', version: 100 }));
    const request = signed(upload('done', 100));
    const first = await handleNotification(deps(), request);
    const replay = await handleNotification(deps(), request);
    expect([first.status, replay.status]).toEqual([200, 200]);
    expect(replay.outcomes).toEqual(['duplicate']);
    expect(await queued()).toEqual([]);
  });

  it('a replayed upload that is still waiting on the queue is not enqueued twice', async () => {
    const request = signed(upload('waiting', 100));
    const first = await handleNotification(deps(), request);
    const replay = await handleNotification(deps(), request);
    expect([first.outcomes, replay.outcomes]).toEqual([['enqueued'], ['stale']]);
    expect(await queued()).toEqual([{ runId: 'webhook', publicId: 'waiting', version: 100 }]);
  });

  it('an older version arriving after a newer one is not enqueued: the version never goes backwards', async () => {
    const newer = await handleNotification(deps(), signed(upload('order', 200), { at: SECONDS - 10 }));
    const older = await handleNotification(deps(), signed(upload('order', 100), { at: SECONDS - 20 }));
    expect(newer.outcomes).toEqual(['enqueued']);
    expect(older.status).toBe(200);
    expect(older.outcomes).toEqual(['stale']);
    expect(await queued()).toEqual([{ runId: 'webhook', publicId: 'order', version: 200 }]);
  });

  it('an older version than the copy held is not enqueued', async () => {
    await state.recordReplicated(assetState({ id: 'image/upload/held', publicId: 'held', version: 300 }));
    const response = await handleNotification(deps(), signed(upload('held', 100)));
    expect(response.outcomes).toEqual(['stale']);
    expect(await queued()).toEqual([]);
  });

  it('a delete marks the asset deleted at source; an upload notification that predates it changes nothing', async () => {
    await state.recordReplicated(assetState({ id: 'image/upload/gone', publicId: 'gone', version: 100 }));
    const deleted = await handleNotification(
      deps(),
      signed(
        {
          notification_type: 'delete',
          resources: [{ resource_type: 'image', type: 'upload', public_id: 'gone' }],
        },
        { at: SECONDS - 5 },
      ),
    );
    expect(deleted.outcomes).toEqual(['deleted']);
    expect((await state.getMany(['image/upload/gone'])).get('image/upload/gone')?.status).toBe(
      'deleted-at-source',
    );
    const late = await handleNotification(deps(), signed(upload('gone', 100), { at: SECONDS - 60 }));
    expect(late.outcomes).toEqual(['stale']);
    expect(await queued()).toEqual([]);
  });

  it('a delete of an older version arriving after an overwrite leaves the asset alone', async () => {
    await state.recordReplicated(assetState({ id: 'image/upload/kept', publicId: 'kept', version: 100 }));
    await handleNotification(deps(), signed(upload('kept', 200), { at: SECONDS - 5 }));
    const late = await handleNotification(
      deps(),
      signed({
        notification_type: 'delete',
        resources: [{ resource_type: 'image', type: 'upload', public_id: 'kept', version: 100 }],
      }),
    );
    expect(late.outcomes).toEqual(['stale']);
    expect((await state.getMany(['image/upload/kept'])).get('image/upload/kept')?.status).toBe('replicated');
    await queued();
  });

  it('a rename enqueues the new public id with the copy’s version and MD5, and records the old id as renamed', async () => {
    await state.recordReplicated(
      assetState({
        id: 'image/upload/old/name',
        publicId: 'old/name',
        assetId: 'id-r',
        version: 100,
        bytes: 1234,
        md5: 'fedcba9876543210fedcba9876543210',
        objectKey: 'assets/image/upload/old/name.png',
      }),
    );
    const response = await handleNotification(
      deps(),
      signed({
        notification_type: 'rename',
        resource_type: 'image',
        type: 'upload',
        asset_id: 'id-r',
        from_public_id: 'old/name',
        to_public_id: 'new/name',
      }),
    );
    expect(response.outcomes).toEqual(['renamed']);
    const [work] = await queue.receive(1, 0);
    expect(work?.item.asset).toMatchObject({
      publicId: 'new/name',
      assetId: 'id-r',
      version: 100,
      bytes: 1234,
      etag: 'fedcba9876543210fedcba9876543210',
      format: 'png',
    });
    if (work) await queue.ack(work);
    expect((await state.getMany(['image/upload/old/name'])).get('image/upload/old/name')?.status).toBe(
      'deleted-at-source',
    );
    const ledger = await bed.clients.dynamo.send(
      new GetItemCommand({
        TableName: bed.table,
        Key: { pk: { S: 'ASSET#image/upload/old/name' }, sk: { S: 'NOTIFIED' } },
      }),
    );
    expect(ledger.Item?.renamedTo?.S).toBe('image/upload/new/name');
  });

  it('tag changes are recorded, and an older change arriving late does not replace a newer one', async () => {
    const change = (added: string[], at: number) =>
      signed(
        {
          notification_type: 'resource_tags_changed',
          resources: [{ resource_type: 'image', type: 'upload', public_id: 'tagged', added, removed: [] }],
        },
        { at },
      );
    expect((await handleNotification(deps(), change(['new'], SECONDS))).outcomes).toEqual(['recorded']);
    expect((await handleNotification(deps(), change(['old'], SECONDS - 30))).outcomes).toEqual(['stale']);
    const ledger = await bed.clients.dynamo.send(
      new GetItemCommand({
        TableName: bed.table,
        Key: { pk: { S: 'ASSET#image/upload/tagged' }, sk: { S: 'NOTIFIED' } },
      }),
    );
    expect(JSON.parse(ledger.Item?.tagsChange?.S ?? '{}')).toMatchObject({ added: ['new'] });
    expect(await queued()).toEqual([]);
    // The ledger item is not an asset state: listings of states never see it.
    const ids: string[] = [];
    for await (const s of state.listAssets()) ids.push(s.id);
    expect(ids).not.toContain('image/upload/tagged');
  });

  it('types the stack does not back up, and unknown notification types, are answered 200 and ignored', async () => {
    const video = await handleNotification(
      { ...deps(), settings: { ...DEFAULT_SETTINGS, resourceTypes: ['image'] } },
      signed(upload('clip', 100, { resource_type: 'video' })),
    );
    expect(video.outcomes).toEqual(['ignored']);
    const other = await handleNotification(deps(), signed({ notification_type: 'eager', public_id: 'x' }));
    expect([other.status, other.outcomes]).toEqual([200, []]);
    expect(await queued()).toEqual([]);
  });

  it('a failure to enqueue is answered 500 so Cloudinary retries, and the retry enqueues', async () => {
    const broken = { ...deps(), queue: { sendBatch: () => Promise.reject(new Error('SQS is down')) } };
    const request = signed(upload('retried', 100));
    expect((await handleNotification(broken, request)).status).toBe(500);
    expect((await handleNotification(deps(), request)).outcomes).toEqual(['enqueued']);
    expect(await queued()).toEqual([{ runId: 'webhook', publicId: 'retried', version: 100 }]);
  });

  it('tells the idle-consumer hook once work is on the queue, and only then', async () => {
    const woken: number[] = [];
    const hooked = { ...deps(), onEnqueued: async (count: number) => void woken.push(count) };
    await handleNotification(hooked, signed(upload('wake', 100)));
    await handleNotification(hooked, signed(upload('wake', 90)));
    expect(woken).toEqual([1]);
    await queued();
  });
});

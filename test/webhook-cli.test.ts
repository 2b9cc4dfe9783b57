import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { webhookMain } from '../shared/cli/webhook.js';
import { WEBHOOK_EVENT_TYPES } from '../shared/webhook/notification.js';
import { verifyNotification } from '../shared/webhook/signature.js';
import { RETRY_AFTER_MS, startCloudinaryDouble, type CloudinaryDouble } from './double/index.js';
import { captureStreams } from './support/backupBed.js';
import { cleanEnv, runCommand } from './support/cliChild.js';

const START = new Date('2026-06-01T08:00:00Z');

/** A receiver on 127.0.0.1 standing in for the stack's function URL: records each POST, answers `status`. */
interface Receiver {
  url: string;
  received: { headers: IncomingHttpHeaders; body: Buffer }[];
  status: number;
  server: Server;
}

async function startReceiver(): Promise<Receiver> {
  const receiver = { received: [], status: 200 } as unknown as Receiver;
  receiver.server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      receiver.received.push({ headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(receiver.status).end();
    });
  });
  await new Promise<void>((resolve) => receiver.server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(receiver.server.address() as AddressInfo).port}/`;
  return receiver;
}

let double: CloudinaryDouble;
let receiver: Receiver;
let now = START;

async function webhook(...argv: string[]) {
  const io = captureStreams();
  const outputs: Record<string, string> = { WebhookUrl: receiver.url };
  const code = await webhookMain(
    argv,
    io.streams,
    { CLOUDINARY_URL: double.cloudinaryUrl },
    async (_stack, name) => outputs[name],
  );
  return { code, out: io.out(), err: io.err() };
}

beforeAll(async () => {
  double = await startCloudinaryDouble({ now: () => now });
  receiver = await startReceiver();
});

afterAll(async () => {
  await double?.close();
  receiver?.server.close();
});

beforeEach(() => {
  receiver.received.length = 0;
  receiver.status = 200;
});

describe('npm run webhook against the Cloudinary double', () => {
  it('--register creates one trigger per event type for the stack’s URL, and a second run changes nothing', async () => {
    const first = await webhook('--register');
    expect(first.code).toBe(0);
    expect(first.out).toContain(`Cloudinary now notifies ${receiver.url}`);
    const triggers = () =>
      (double.webhooks.list().triggers as { uri: string; event_type: string }[]).filter(
        (t) => t.uri === receiver.url,
      );
    expect(
      triggers()
        .map((t) => t.event_type)
        .sort(),
    ).toEqual([...WEBHOOK_EVENT_TYPES].sort());
    const again = await webhook('--register');
    expect(again.code).toBe(0);
    expect(again.out).toContain('upload: already registered');
    expect(triggers()).toHaveLength(WEBHOOK_EVENT_TYPES.length);
    expect(first.out + again.out + first.err).not.toContain(double.apiSecret);
  });

  it('--status says which event types reach the stack', async () => {
    const status = await webhook('--status');
    expect(status.code).toBe(0);
    for (const type of WEBHOOK_EVENT_TYPES) expect(status.out).toContain(`${type}: registered`);
    expect(status.out).toContain('of every change the backup follows');
  });

  it('an upload POSTs a notification signed as Cloudinary signs it to the registered URL', async () => {
    await double.webhooks.upload({
      publicId: 'hook/cat',
      resourceType: 'image',
      format: 'png',
      bytes: 5_000,
    });
    expect(receiver.received).toHaveLength(1);
    const [post] = receiver.received;
    const payload = JSON.parse(post?.body.toString() ?? '{}') as Record<string, unknown>;
    expect(payload).toMatchObject({
      notification_type: 'upload',
      public_id: 'hook/cat',
      resource_type: 'image',
      bytes: 5_000,
    });
    expect(typeof payload.etag).toBe('string');
    const verdict = verifyNotification(
      {
        body: post?.body ?? Buffer.alloc(0),
        timestamp: post?.headers['x-cld-timestamp'] as string,
        signature: post?.headers['x-cld-signature'] as string,
      },
      double.apiSecret,
      'sha1',
      now,
    );
    expect(verdict).toBe('valid');
  });

  it('overwrite, rename and delete each notify with their own notification_type', async () => {
    await double.webhooks.overwrite('image', 'upload', 'hook/cat', 6_000);
    await double.webhooks.rename('image', 'upload', 'hook/cat', 'hook/kitten');
    await double.webhooks.delete('image', 'upload', 'hook/kitten');
    const types = receiver.received.map(
      (r) => (JSON.parse(r.body.toString()) as { notification_type: string }).notification_type,
    );
    expect(types).toEqual(['upload', 'rename', 'delete']);
    expect(JSON.parse(receiver.received[1]?.body.toString() ?? '{}')).toMatchObject({
      from_public_id: 'hook/cat',
      to_public_id: 'hook/kitten',
    });
  });

  it('a notification not answered 200 is retried three times over about ten minutes of the double’s clock, then dropped', async () => {
    receiver.status = 500;
    await double.webhooks.upload({
      publicId: 'hook/retry',
      resourceType: 'image',
      format: 'jpg',
      bytes: 1_000,
    });
    expect(receiver.received).toHaveLength(1);
    expect(await double.webhooks.deliverDue()).toEqual([]);
    for (const after of RETRY_AFTER_MS) {
      now = new Date(START.getTime() + after);
      const retried = await double.webhooks.deliverDue();
      expect(retried.map((a) => a.status)).toEqual([500]);
    }
    expect(receiver.received).toHaveLength(4);
    // The retries resend the first try's body, timestamp and signature.
    expect(new Set(receiver.received.map((r) => r.headers['x-cld-signature'])).size).toBe(1);
    now = new Date(START.getTime() + 60 * 60_000);
    expect(await double.webhooks.deliverDue()).toEqual([]);
    expect(double.webhooks.pendingCount).toBe(0);
    expect(Math.max(...RETRY_AFTER_MS)).toBeLessThanOrEqual(10 * 60_000);
    now = START;
  });

  it('a retry answered 200 ends the retries', async () => {
    receiver.status = 503;
    await double.webhooks.upload({
      publicId: 'hook/once',
      resourceType: 'image',
      format: 'jpg',
      bytes: 1_000,
    });
    receiver.status = 200;
    now = new Date(START.getTime() + (RETRY_AFTER_MS[0] ?? 0));
    expect((await double.webhooks.deliverDue()).map((a) => a.status)).toEqual([200]);
    now = new Date(START.getTime() + 60 * 60_000);
    expect(await double.webhooks.deliverDue()).toEqual([]);
    expect(receiver.received).toHaveLength(2);
    now = START;
  });

  it('the triggers endpoints need the Admin API’s authentication', async () => {
    const answer = await fetch(`${double.origin}/v1_1/${double.cloudName}/triggers`);
    expect(answer.status).toBe(401);
  });

  it('--remove deletes the stack’s triggers; afterwards nothing is POSTed and --status says so', async () => {
    const removed = await webhook('--remove');
    expect(removed.code).toBe(0);
    expect(removed.out).toContain(`Cloudinary no longer notifies ${receiver.url}`);
    await double.webhooks.upload({
      publicId: 'hook/after',
      resourceType: 'image',
      format: 'jpg',
      bytes: 1_000,
    });
    expect(receiver.received).toEqual([]);
    const status = await webhook('--status');
    expect(status.out).toContain('upload: not registered');
    expect(status.out).toContain('run npm run webhook -- --register');
  });

  it('without exactly one action, or without a webhook URL in the stack, it says what to do (exit 2)', async () => {
    const none = await webhook();
    expect(none.code).toBe(2);
    expect(none.err).toContain('give exactly one of --register, --status, --remove');
    const io = captureStreams();
    const code = await webhookMain(
      ['--status'],
      io.streams,
      { CLOUDINARY_URL: double.cloudinaryUrl },
      async () => undefined,
    );
    expect(code).toBe(2);
    expect(io.err()).toContain('replicator:webhooks=true');
  });

  it('a wrong api_secret is refused by Cloudinary with a message that names the fix, never the secret', async () => {
    const io = captureStreams();
    const wrong = double.cloudinaryUrl.replace(encodeURIComponent(double.apiSecret), 'wrongsecret123');
    const code = await webhookMain(
      ['--status'],
      io.streams,
      { CLOUDINARY_URL: wrong },
      async () => receiver.url,
    );
    expect(code).toBe(1);
    expect(io.err()).toContain('check the API key and secret');
    expect(io.err()).not.toContain('wrongsecret123');
  });
});

describe('a double whose account signs with SHA-256', () => {
  it('signs notifications with SHA-256', async () => {
    const sha256 = await startCloudinaryDouble({ now: () => START, signatureAlgorithm: 'sha256' });
    try {
      sha256.webhooks.create({ uri: receiver.url, event_type: 'all' });
      await sha256.webhooks.upload({ publicId: 'strong', resourceType: 'raw', bytes: 100 });
      const [post] = receiver.received;
      const request = {
        body: post?.body ?? Buffer.alloc(0),
        timestamp: post?.headers['x-cld-timestamp'] as string,
        signature: post?.headers['x-cld-signature'] as string,
      };
      expect(verifyNotification(request, sha256.apiSecret, 'sha256', START)).toBe('valid');
      expect(verifyNotification(request, sha256.apiSecret, 'sha1', START)).toBe('forged');
    } finally {
      await sha256.close();
    }
  });
});

describe('npm run webhook as a process', { timeout: 120_000 }, () => {
  it('prints its help, and without an action exits 2 saying what to give', async () => {
    const help = await runCommand('shared/cli/webhook.ts', ['--help'], cleanEnv());
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toContain('npm run webhook -- --register | --status | --remove');
    const bare = await runCommand('shared/cli/webhook.ts', [], cleanEnv());
    expect(bare.code).toBe(2);
    expect(bare.stderr).toMatch(/^webhook: give exactly one of --register, --status, --remove/u);
  });
});

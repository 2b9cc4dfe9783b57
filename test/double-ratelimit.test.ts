import { afterEach, describe, expect, it } from 'vitest';
import { generateLibrary, loadSdkFor, pointSdkAt, startCloudinaryDouble } from './double/index.js';
import type { CloudinaryDouble, CloudinarySdk, DoubleOptions } from './double/index.js';
import { rawGet, rejectionOf } from './double/testing.js';

const START = new Date('2025-08-08T16:12:34Z');

describe('the Admin API rate limit', () => {
  // Each test starts its own double; the SDK is loaded by the first one.
  let cloudinary: CloudinarySdk | undefined;
  const open: CloudinaryDouble[] = [];

  async function start(options: DoubleOptions = {}): Promise<CloudinaryDouble> {
    let now = START.getTime();
    const double = await startCloudinaryDouble({
      library: generateLibrary({
        seed: 'rate',
        counts: { image: { upload: 3 } },
        sizes: { image: [10, 100] },
      }),
      now: () => new Date((now += 1)),
      ...options,
    });
    open.push(double);
    if (cloudinary === undefined) cloudinary = await loadSdkFor(double);
    else pointSdkAt(cloudinary, double);
    return double;
  }

  function sdk(): CloudinarySdk {
    if (cloudinary === undefined) throw new Error('start a double first');
    return cloudinary;
  }

  const rawAdmin = (double: CloudinaryDouble): ReturnType<typeof rawGet> =>
    rawGet(`${double.origin}/v1_1/double-cloud/resources/image`, {
      authorization: `Basic ${Buffer.from(`${double.apiKey}:${double.apiSecret}`).toString('base64')}`,
    });

  async function spend(calls: number): Promise<void> {
    for (let i = 0; i < calls; i += 1) await sdk().api.ping();
  }

  afterEach(async () => {
    await Promise.all(open.splice(0).map((double) => double.close()));
  });

  it('puts the budget on every answer, which the SDK exposes as rate_limit_*', async () => {
    await start();

    const first = (await sdk().api.resources()) as Record<string, unknown>;
    const second = (await sdk().search.expression('resource_type:image').execute()) as Record<
      string,
      unknown
    >;

    expect(first).toMatchObject({ rate_limit_allowed: 500, rate_limit_remaining: 499 });
    expect(second).toMatchObject({ rate_limit_allowed: 500, rate_limit_remaining: 498 });
    expect(first.rate_limit_reset_at).toEqual(new Date('2025-08-08T17:00:00Z'));
  });

  it('sends the headers on errors after login too, with the reset as an HTTP date', async () => {
    const double = await start();

    const notFound = await rawGet(`${double.origin}/v1_1/double-cloud/resources/image/upload/missing`, {
      authorization: `Basic ${Buffer.from(`${double.apiKey}:${double.apiSecret}`).toString('base64')}`,
    });

    expect(notFound.status).toBe(404);
    expect(notFound.headers).toMatchObject({
      'x-featureratelimit-limit': '500',
      'x-featureratelimit-remaining': '499',
      'x-featureratelimit-reset': 'Fri, 08 Aug 2025 17:00:00 GMT',
    });
  });

  it('answers 420 with the exact message once 500 calls are spent, searches included', async () => {
    const double = await start();
    await spend(499);
    await sdk().search.expression('type:upload').execute();

    const error = await rejectionOf(sdk().api.resources());
    const raw = await rawAdmin(double);

    expect(error).toEqual(
      expect.objectContaining({
        error: {
          message:
            'Rate Limit Exceeded. Limit of 500 api operations reached. Try again on 2025-08-08 17:00:00 UTC',
          http_code: 420,
        },
      }),
    );
    expect(error).not.toHaveProperty('http_code');
    expect(raw.status).toBe(420);
    expect(raw.headers['x-featureratelimit-remaining']).toBe('0');
    expect(double.counters).toMatchObject({ adminCalls: 502, searchCalls: 1, rateLimited: 2 });
  });

  it('opens a new budget at the next hour of the injectable clock', async () => {
    const double = await start();
    double.setRateLimit(2);
    await spend(2);
    const refused = await rejectionOf(sdk().api.ping());

    double.clock.set(new Date('2025-08-08T17:00:00Z'));
    const answer = (await sdk().api.ping()) as Record<string, unknown>;

    expect(refused).toMatchObject({ error: { http_code: 420 } });
    expect(answer).toMatchObject({ rate_limit_allowed: 2, rate_limit_remaining: 1 });
    expect(answer.rate_limit_reset_at).toEqual(new Date('2025-08-08T18:00:00Z'));
  });

  it('can answer 429 instead, and leave the headers off the refusal', async () => {
    const double = await start({
      rateLimitPerHour: 1,
      rateLimitStatus: 429,
      rateLimitHeadersWhenExceeded: false,
    });
    await spend(1);

    const error = await rejectionOf(sdk().api.ping());
    const raw = await rawAdmin(double);

    expect(error).toMatchObject({
      error: { http_code: 429, message: expect.stringContaining('Limit of 1 api operations reached') },
    });
    expect(raw.status).toBe(429);
    expect(raw.headers['x-featureratelimit-limit']).toBeUndefined();
  });

  it('does not meter delivery, the download API or refused logins', async () => {
    const double = await start({ rateLimitPerHour: 1 });
    const asset = double.library.all()[0];
    if (asset === undefined) throw new Error('empty library');
    await spend(1);

    const delivered = await fetch(double.deliveryUrl(asset));
    const downloaded = await fetch(sdk().utils.private_download_url(asset.public_id, asset.format ?? '', {}));
    const badLogin = await rejectionOf(sdk().api.ping({ api_key: 'nope' }));

    expect(delivered.status).toBe(200);
    expect(downloaded.status).toBe(200);
    expect(badLogin).toMatchObject({ error: { http_code: 401 } });
    expect(double.rateLimitRemaining()).toBe(0);
    expect(double.counters.rateLimited).toBe(0);
  });
});

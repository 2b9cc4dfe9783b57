import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Library, loadSdkFor, pointSdkAt, startCloudinaryDouble } from './double/index.js';
import type { CloudinaryDouble, CloudinarySdk, DoubleAsset } from './double/index.js';
import { fetchBytes, md5Hex, rawGet, rejectionOf } from './double/testing.js';

describe('fault injection', () => {
  let cloudinary: CloudinarySdk | undefined;
  const open: CloudinaryDouble[] = [];

  async function start(
    seed = 'faults',
  ): Promise<{ double: CloudinaryDouble; sdk: CloudinarySdk; a: DoubleAsset; b: DoubleAsset }> {
    const library = new Library(seed);
    const a = library.add({ publicId: 'faulty/a', resourceType: 'image', bytes: 100_000 });
    const b = library.add({ publicId: 'faulty/b', resourceType: 'image', bytes: 100_000 });
    const double = await startCloudinaryDouble({ library });
    open.push(double);
    if (cloudinary === undefined) cloudinary = await loadSdkFor(double);
    else pointSdkAt(cloudinary, double);
    return { double, sdk: cloudinary, a, b };
  }

  const elapsed = async (run: () => Promise<unknown>): Promise<number> => {
    const started = performance.now();
    await run();
    return performance.now() - started;
  };

  afterEach(async () => {
    await Promise.all(open.splice(0).map((double) => double.close()));
  });

  it('delays answers of one route by the asked latency', async () => {
    const { double, sdk, a } = await start();
    double.faults.add({ route: 'delivery', kind: 'latency', ms: 300 });

    const slow = await elapsed(() => fetchBytes(double.deliveryUrl(a)));
    const fast = await elapsed(() => sdk.api.ping());

    expect(slow).toBeGreaterThanOrEqual(290);
    expect(fast).toBeLessThan(250);
  });

  it('caps the bandwidth of a body and still delivers every byte', async () => {
    const { double, a } = await start();
    double.faults.add({ route: 'delivery', kind: 'bandwidth', bytesPerSecond: 250_000 });
    let body: Buffer = Buffer.alloc(0);

    const took = await elapsed(async () => {
      body = (await fetchBytes(double.deliveryUrl(a))).body;
    });

    expect(took).toBeGreaterThanOrEqual(350);
    expect(md5Hex(body)).toBe(await double.library.md5Of(a));
  });

  it('answers a deterministic share of requests with 503, which the SDK reports flat', async () => {
    const patterns: string[] = [];
    let flat: unknown;
    for (let round = 0; round < 2; round += 1) {
      const { double, sdk } = await start('same-seed');
      double.faults.add({ route: 'admin', kind: 'status', status: 503, share: 0.5 });
      let pattern = '';
      for (let i = 0; i < 24; i += 1) {
        const failure = await sdk.api.ping().then(
          () => undefined,
          (error: unknown) => error,
        );
        pattern += failure === undefined ? '.' : 'x';
        flat ??= failure;
      }
      patterns.push(pattern);
    }

    expect(patterns[0]).toBe(patterns[1]);
    expect(patterns[0]).toMatch(/x/);
    expect(patterns[0]).toMatch(/\./);
    expect(flat).toMatchObject({ message: 'Server returned unexpected status code - 503', http_code: 503 });
  });

  it('answers 500 as Cloudinary does, which the SDK reports under error', async () => {
    const { double, sdk } = await start();
    double.faults.add({ route: 'search', kind: 'status', status: 500, times: 1 });

    const failure = await rejectionOf(sdk.search.expression('type:upload').execute());
    const next = await sdk.search.expression('type:upload').execute();

    expect(failure).toMatchObject({ error: { http_code: 500 } });
    expect(next).toMatchObject({ total_count: 2 });
  });

  it('hits only the first N requests, and only the asked public id', async () => {
    const { double, a, b } = await start();
    const fault = double.faults.add({
      route: 'delivery',
      publicId: a.public_id,
      kind: 'status',
      status: 502,
      times: 2,
    });

    const statuses = [];
    for (const target of [a, b, a, a, b]) statuses.push((await fetch(double.deliveryUrl(target))).status);

    expect(statuses).toEqual([502, 200, 502, 200, 200]);
    expect(fault.hits).toBe(2);
  });

  it('resets the connection after N bytes of body', async () => {
    const { double, a } = await start();
    double.faults.add({ route: 'delivery', kind: 'reset', afterBytes: 1_000, times: 2 });

    const raw = await rawGet(double.deliveryUrl(a));
    const viaFetch = fetchBytes(double.deliveryUrl(a));

    expect(raw.status).toBe(200);
    expect(raw.headers['content-length']).toBe('100000');
    expect(raw.error).toBeDefined();
    expect(raw.body.length).toBe(1_000);
    await expect(viaFetch).rejects.toThrow();
  });

  it('closes cleanly before the announced Content-Length', async () => {
    const { double, a } = await start();
    double.faults.add({ route: 'download', kind: 'short', afterBytes: 5_000 });
    const url = cloudinary?.utils.private_download_url(a.public_id, 'jpg', {}) ?? '';

    const raw = await rawGet(url);

    expect(raw.status).toBe(200);
    expect(raw.headers['content-length']).toBe('100000');
    expect(raw.body.length).toBe(5_000);
    expect(raw.error).toBeDefined();
  });

  it('corrupts one byte while keeping the length, so the MD5 no longer matches the etag', async () => {
    const { double, sdk, a } = await start();
    const { etag } = (await sdk.api.resource(a.public_id)) as { etag: string };
    const { body: good } = await fetchBytes(double.deliveryUrl(a));
    double.faults.add({ route: 'delivery', kind: 'corrupt', times: 1 });

    const { response, body: bad } = await fetchBytes(double.deliveryUrl(a));
    const differing = [...bad].filter((byte, i) => byte !== good[i]).length;

    expect(md5Hex(good)).toBe(etag);
    expect(response.headers.get('content-length')).toBe('100000');
    expect(bad.length).toBe(good.length);
    expect(md5Hex(bad)).not.toBe(etag);
    expect(differing).toBe(1);
    expect(bad[50_000]).not.toBe(good[50_000]);
  });

  it('breaks an Admin answer mid-body, which the SDK rejects', async () => {
    const { double, sdk } = await start();
    double.faults.add({ route: 'admin', kind: 'reset', afterBytes: 10, times: 1 });

    const failure = await rejectionOf(sdk.api.resources());
    const next = await sdk.api.resources();

    expect(failure).toBeDefined();
    expect(next).toMatchObject({ resources: expect.any(Array) });
  });

  it('can hang a request forever; close() ends it and frees the port', async () => {
    const { double, sdk } = await start();
    double.faults.add({ route: 'admin', kind: 'hang' });
    const hanging = sdk.api.ping().then(
      () => 'answered',
      () => 'failed',
    );
    const stillPending = await Promise.race([
      hanging,
      new Promise((resolve) => setTimeout(() => resolve('pending'), 200)),
    ]);

    await double.close();
    const outcome = await hanging;
    const reused = createServer();
    await new Promise<void>((resolve, reject) => {
      reused.once('error', reject);
      reused.listen(double.port, '127.0.0.1', () => resolve());
    });
    await new Promise<void>((resolve) => reused.close(() => resolve()));

    expect(stillPending).toBe('pending');
    expect(outcome).toBe('failed');
  });

  it('lists, removes and clears faults', async () => {
    const { double, a } = await start();
    const first = double.faults.add({ route: ['delivery', 'download'], kind: 'status', status: 503 });
    double.faults.add({ route: 'admin', kind: 'latency', ms: 10 });

    const listed = double.faults.list().length;
    double.faults.remove(first);
    const afterRemove = double.faults.list().length;
    double.faults.clear();
    const status = (await fetch(double.deliveryUrl(a))).status;

    expect([listed, afterRemove, double.faults.list().length]).toEqual([2, 1, 0]);
    expect(status).toBe(200);
    expect(() => double.faults.add({ route: 'delivery', kind: 'status', status: 200 })).toThrow();
  });
});

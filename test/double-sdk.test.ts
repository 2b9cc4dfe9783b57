import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateLibrary, loadSdkFor, pointSdkAt, startCloudinaryDouble } from './double/index.js';
import type { CloudinaryDouble, CloudinarySdk } from './double/index.js';
import { rawGet, rejectionOf } from './double/testing.js';

describe('the real SDK against the double', () => {
  let double: CloudinaryDouble;
  let cloudinary: CloudinarySdk;

  beforeAll(async () => {
    double = await startCloudinaryDouble({
      library: generateLibrary({
        seed: 'sdk',
        counts: { image: { upload: 5, private: 2 } },
        sizes: { image: [100, 2000] },
      }),
    });
    cloudinary = await loadSdkFor(double);
  });

  afterAll(async () => {
    await double.close();
  });

  it('reaches the double over plain http once CLOUDINARY_URL is set before the first import', async () => {
    // Prepare / Act
    const answer = await cloudinary.api.ping();

    // Assess
    expect(answer).toMatchObject({ status: 'ok', rate_limit_allowed: 500 });
    expect(double.requestLog.at(-1)).toMatchObject({
      kind: 'admin',
      status: 200,
      path: '/v1_1/double-cloud/ping',
    });
  });

  it('takes the credentials, cloud name and delivery host from cloudinaryUrl', () => {
    const config = cloudinary.config();

    expect(config).toMatchObject({
      cloud_name: double.cloudName,
      api_key: double.apiKey,
      api_secret: double.apiSecret,
      upload_prefix: double.origin,
      cname: `127.0.0.1:${double.port}`,
    });
    expect(cloudinary.url('sample', { secure: false, version: 3, format: 'jpg' })).toMatch(
      new RegExp(`^${double.origin}/double-cloud/image/upload/v3/sample\\.jpg`),
    );
  });

  it('serves a second double in the same process after pointSdkAt, and per-call sdkOptions', async () => {
    const other = await startCloudinaryDouble({ cloudName: 'other-cloud' });
    try {
      pointSdkAt(cloudinary, other);
      await cloudinary.api.ping();
      pointSdkAt(cloudinary, double);
      await cloudinary.api.ping(other.sdkOptions);

      expect(other.counters.adminCalls).toBe(2);
      expect(other.requestLog.map((entry) => entry.path)).toEqual([
        '/v1_1/other-cloud/ping',
        '/v1_1/other-cloud/ping',
      ]);
    } finally {
      pointSdkAt(cloudinary, double);
      await other.close();
    }
  });

  it('answers 401 with a JSON error for a wrong API key, unmetered and without rate-limit headers', async () => {
    const before = double.counters.adminCalls;

    const error = await rejectionOf(
      cloudinary.api.resources({ api_key: '999', api_secret: double.apiSecret }),
    );
    const raw = await rawGet(`${double.origin}/v1_1/double-cloud/resources/image`, {
      authorization: `Basic ${Buffer.from(`999:${double.apiSecret}`).toString('base64')}`,
    });

    expect(error).toMatchObject({ error: { message: 'Unknown API key 999', http_code: 401 } });
    expect(raw.status).toBe(401);
    expect(JSON.parse(raw.body.toString())).toEqual({ error: { message: 'Unknown API key 999' } });
    expect(raw.headers['x-featureratelimit-limit']).toBeUndefined();
    expect(double.counters.adminCalls).toBe(before);
  });

  it('answers 401 for a wrong secret and never echoes a secret', async () => {
    const wrongSecret = 'not-the-secret-at-all';

    const error = (await rejectionOf(
      cloudinary.api.resources({ api_key: double.apiKey, api_secret: wrongSecret }),
    )) as { error: { message: string; http_code: number } };
    const missing = await rawGet(`${double.origin}/v1_1/double-cloud/resources/image`);

    expect(error.error.http_code).toBe(401);
    expect(error.error.message).not.toContain(wrongSecret);
    expect(error.error.message).not.toContain(double.apiSecret);
    expect(missing.status).toBe(401);
  });

  it('keeps the secret and every signature out of the request log and error messages', async () => {
    const privateAsset = double.library.all().find((asset) => asset.type === 'private');
    if (privateAsset === undefined) throw new Error('fixture has no private asset');
    const signedUrl = cloudinary.url(privateAsset.public_id, {
      type: 'private',
      sign_url: true,
      secure: false,
      version: privateAsset.version,
      format: privateAsset.format,
    });
    const downloadUrl = cloudinary.utils.private_download_url(
      privateAsset.public_id,
      privateAsset.format ?? '',
      {
        type: 'private',
      },
    );
    const urlSignature = /s--([^/]+)--/.exec(signedUrl)?.[1] ?? '';
    const apiSignature = new URL(downloadUrl).searchParams.get('signature') ?? '';

    const answers = await Promise.all([
      fetch(signedUrl),
      fetch(downloadUrl),
      fetch(
        downloadUrl.replace(
          apiSignature,
          apiSignature.replace(/^./, (c) => (c === 'a' ? 'b' : 'a')),
        ),
      ),
      fetch(signedUrl.replace(urlSignature, 'AAAAAAAA')),
    ]);
    const bodies = await Promise.all(answers.map((answer) => answer.text()));

    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 401, 401]);
    const logged = JSON.stringify(double.requestLog);
    for (const secret of [double.apiSecret, urlSignature, apiSignature]) {
      expect(logged).not.toContain(secret);
      for (const body of bodies.slice(2)) expect(body).not.toContain(secret);
    }
    expect(logged).toContain('s--***--');
  });
});

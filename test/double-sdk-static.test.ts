// The double's http switch must come before anything that loads `cloudinary`.
import './double/httpSdk.js';
import { v2 as cloudinary } from 'cloudinary';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pointSdkAt, startCloudinaryDouble } from './double/index.js';
import type { CloudinaryDouble } from './double/index.js';
import { rejectionOf } from './double/testing.js';

describe('a statically imported SDK', () => {
  let double: CloudinaryDouble;

  beforeAll(async () => {
    double = await startCloudinaryDouble();
  });

  afterAll(async () => {
    await double.close();
  });

  it('reaches the double when httpSdk is imported first and pointSdkAt aims it', async () => {
    pointSdkAt(cloudinary, double);

    const answer = await cloudinary.api.ping();

    expect(answer).toMatchObject({ status: 'ok' });
    expect(double.counters.adminCalls).toBe(1);
  });

  it('also takes per-call sdkOptions, the transport having been chosen (http) at load', async () => {
    const answer = await cloudinary.api.ping({ ...double.sdkOptions });
    const unknownKey = await rejectionOf(cloudinary.api.ping({ ...double.sdkOptions, api_key: 'nope' }));

    expect(answer).toMatchObject({ status: 'ok' });
    expect(unknownKey).toMatchObject({ error: { http_code: 401 } });
  });
});

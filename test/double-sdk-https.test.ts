import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCloudinaryDouble } from './double/index.js';
import type { CloudinaryDouble } from './double/index.js';

describe('an SDK first loaded without an http upload_prefix', () => {
  let double: CloudinaryDouble;

  beforeAll(async () => {
    double = await startCloudinaryDouble();
  });

  afterAll(async () => {
    await double.close();
  });

  it('keeps https and cannot be switched to the double by config() afterwards', async () => {
    delete process.env.CLOUDINARY_URL;
    const { v2: cloudinary } = await import('cloudinary');

    cloudinary.config({ ...double.sdkOptions });

    expect(() => cloudinary.api.ping()).toThrow(/Protocol "http:" not supported/);
    expect(double.requestLog).toHaveLength(0);
  });
});

import type { v2 } from 'cloudinary';
import type { CloudinaryDouble } from './types.js';

export type CloudinarySdk = typeof v2;

/**
 * Loads the real `cloudinary` SDK pointed at the double.
 *
 * The SDK picks `http` or `https` once, when it is first loaded, from `CLOUDINARY_URL`'s
 * `upload_prefix`; calling `config({ upload_prefix: 'http://...' })` afterwards does not switch it
 * (requests then fail with `Protocol "http:" not supported`). So this sets `CLOUDINARY_URL` before the
 * first (dynamic) import, then re-reads it with `config(true)` so a second double in the same process
 * works too. Vitest runs each test file in its own process, so loading once per file is enough.
 */
export async function loadSdkFor(double: CloudinaryDouble): Promise<CloudinarySdk> {
  process.env.CLOUDINARY_URL = double.cloudinaryUrl;
  const { v2: cloudinary } = await import('cloudinary');
  cloudinary.config(true);
  return cloudinary;
}

/**
 * Points an already loaded SDK (loaded after `./httpSdk.js`, or by `loadSdkFor`) at another double.
 */
export function pointSdkAt(cloudinary: CloudinarySdk, double: CloudinaryDouble): void {
  process.env.CLOUDINARY_URL = double.cloudinaryUrl;
  cloudinary.config(true);
}

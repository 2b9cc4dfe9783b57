import type { CloudinaryCredentials } from '../config.js';

type CloudinaryModule = typeof import('cloudinary');
export type CloudinaryV2 = CloudinaryModule['v2'];

let loaded: Promise<CloudinaryV2> | undefined;

/**
 * Loads the `cloudinary` SDK once. The SDK picks `http` or `https` for every API call when it is
 * first loaded, from CLOUDINARY_URL's `upload_prefix`, so an `http://` API origin (a private
 * gateway or a test server) must be visible at that moment. Only the origin is exposed, never the
 * credentials: those travel with each call.
 */
export function loadCloudinarySdk(credentials: CloudinaryCredentials): Promise<CloudinaryV2> {
  loaded ??= (async () => {
    const previous = process.env.CLOUDINARY_URL;
    process.env.CLOUDINARY_URL = `cloudinary://${encodeURIComponent(credentials.cloudName)}?upload_prefix=${credentials.apiOrigin}`;
    try {
      const mod = (await import('cloudinary')) as CloudinaryModule & { default?: CloudinaryModule };
      const v2 = mod.v2 ?? mod.default?.v2;
      // Keeps `request_options.auth` (key:secret) out of every rejection the SDK produces.
      v2.config({ hide_sensitive: true });
      return v2;
    } finally {
      if (previous === undefined) delete process.env.CLOUDINARY_URL;
      else process.env.CLOUDINARY_URL = previous;
    }
  })();
  return loaded;
}

/** Per-call options that carry the account, so one process can serve several accounts. */
export function callOptions(credentials: CloudinaryCredentials): Record<string, string> {
  return {
    cloud_name: credentials.cloudName,
    api_key: credentials.apiKey,
    api_secret: credentials.apiSecret,
    upload_prefix: credentials.apiOrigin,
  };
}

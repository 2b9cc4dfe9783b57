import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { parseCloudinaryUrl, type CloudinaryCredentials } from '../config.js';
import { ConfigError, FatalError, describeError } from '../errors.js';

type SecretCache = Map<string, { credentials: CloudinaryCredentials; at: number }>;
/** One cache per client, so it lives and dies with the engine (the container) that reads it. */
const caches = new WeakMap<SecretsManagerClient, SecretCache>();
/** Secrets are re-read after this long, so a rotated secret is picked up without a deploy. */
const CACHE_TTL_MS = 5 * 60_000;

/**
 * Reads CLOUDINARY_URL from Secrets Manager (a plain `cloudinary://…` string or JSON with a
 * `CLOUDINARY_URL` field), cached per container. The value never reaches logs or errors.
 */
export async function cloudinaryCredentialsFromSecret(
  secrets: SecretsManagerClient,
  secretId: string,
  now: () => number = Date.now,
): Promise<CloudinaryCredentials> {
  let cache = caches.get(secrets);
  if (!cache) {
    cache = new Map();
    caches.set(secrets, cache);
  }
  const hit = cache.get(secretId);
  if (hit && now() - hit.at < CACHE_TTL_MS) return hit.credentials;
  let value: string | undefined;
  try {
    const result = await secrets.send(new GetSecretValueCommand({ SecretId: secretId }));
    value = result.SecretString;
  } catch (error) {
    throw new FatalError(`cannot read the Cloudinary secret ${secretId}: ${describeError(error)}`);
  }
  if (!value) throw new ConfigError(`the secret ${secretId} is empty; put CLOUDINARY_URL in it.`);
  let url = value.trim();
  if (url.startsWith('{')) {
    try {
      url = String((JSON.parse(url) as { CLOUDINARY_URL?: unknown }).CLOUDINARY_URL ?? '');
    } catch {
      throw new ConfigError(
        `the secret ${secretId} is neither a cloudinary:// URL nor JSON with CLOUDINARY_URL.`,
      );
    }
  }
  let credentials: CloudinaryCredentials;
  try {
    credentials = parseCloudinaryUrl(url);
  } catch (error) {
    throw new ConfigError(
      `the secret ${secretId} holds no usable CLOUDINARY_URL: ${(error as Error).message}`,
    );
  }
  cache.set(secretId, { credentials, at: now() });
  return credentials;
}

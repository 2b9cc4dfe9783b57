import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GetParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { parseCloudinaryUrl, type CloudinaryCredentials } from '../config.js';
import { ConfigError, FatalError, describeError } from '../errors.js';

type CredentialsCache = Map<string, { credentials: CloudinaryCredentials; at: number }>;
/** One cache per client, so it lives and dies with the engine (the container) that reads it. */
const caches = new WeakMap<object, CredentialsCache>();
/** Values are re-read after this long, so a rotated Cloudinary secret is picked up without a deploy. */
const CACHE_TTL_MS = 5 * 60_000;

/** Where the Cloudinary credentials live, for messages: never their value. */
interface Place {
  /** "the SSM parameter /x" or "the secret arn:…". */
  label: string;
  /** What to run to put a value in. */
  fix: string;
}

async function cached(
  client: object,
  key: string,
  now: () => number,
  read: () => Promise<CloudinaryCredentials>,
): Promise<CloudinaryCredentials> {
  let cache = caches.get(client);
  if (!cache) {
    cache = new Map();
    caches.set(client, cache);
  }
  const hit = cache.get(key);
  if (hit && now() - hit.at < CACHE_TTL_MS) return hit.credentials;
  const credentials = await read();
  cache.set(key, { credentials, at: now() });
  return credentials;
}

/** A plain `cloudinary://…` value or JSON with a `CLOUDINARY_URL` field; the value never reaches an error. */
function credentialsFrom(value: string | undefined, place: Place): CloudinaryCredentials {
  if (!value?.trim())
    throw new ConfigError(`${place.label} is empty; put CLOUDINARY_URL in it: ${place.fix}`);
  let url = value.trim();
  if (url.startsWith('{')) {
    try {
      url = String((JSON.parse(url) as { CLOUDINARY_URL?: unknown }).CLOUDINARY_URL ?? '');
    } catch {
      throw new ConfigError(`${place.label} is neither a cloudinary:// URL nor JSON with CLOUDINARY_URL.`);
    }
  }
  try {
    return parseCloudinaryUrl(url);
  } catch (error) {
    throw new ConfigError(`${place.label} holds no usable CLOUDINARY_URL: ${(error as Error).message}`);
  }
}

/**
 * Reads CLOUDINARY_URL from a Secrets Manager secret (a plain `cloudinary://…` string or JSON with a
 * `CLOUDINARY_URL` field), cached per container. The value never reaches logs or errors.
 */
export async function cloudinaryCredentialsFromSecret(
  secrets: SecretsManagerClient,
  secretId: string,
  now: () => number = Date.now,
): Promise<CloudinaryCredentials> {
  const place = {
    label: `the secret ${secretId}`,
    fix: `aws secretsmanager put-secret-value --secret-id ${secretId} --secret-string file://cloudinary-url.txt`,
  };
  return cached(secrets, secretId, now, async () => {
    let value: string | undefined;
    try {
      value = (await secrets.send(new GetSecretValueCommand({ SecretId: secretId }))).SecretString;
    } catch (error) {
      throw new FatalError(`cannot read the Cloudinary secret ${secretId}: ${describeError(error)}`);
    }
    return credentialsFrom(value, place);
  });
}

/**
 * Reads CLOUDINARY_URL from an SSM Parameter Store parameter (a SecureString, decrypted), cached per
 * container. A parameter that does not exist yet is a configuration error that says how to create it.
 */
export async function cloudinaryCredentialsFromParameter(
  ssm: SSMClient,
  name: string,
  now: () => number = Date.now,
): Promise<CloudinaryCredentials> {
  const fix = `aws ssm put-parameter --name ${name} --type SecureString --overwrite --value file://cloudinary-url.txt`;
  const place = { label: `the SSM parameter ${name}`, fix };
  return cached(ssm, name, now, async () => {
    let value: string | undefined;
    try {
      value = (await ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true }))).Parameter
        ?.Value;
    } catch (error) {
      if ((error as { name?: string }).name === 'ParameterNotFound') {
        throw new ConfigError(
          `the SSM parameter ${name} does not exist yet; put CLOUDINARY_URL in it: ${fix}`,
        );
      }
      throw new FatalError(`cannot read the Cloudinary parameter ${name}: ${describeError(error)}`);
    }
    return credentialsFrom(value, place);
  });
}

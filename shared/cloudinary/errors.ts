import {
  AssetGoneError,
  FatalError,
  PermanentAssetError,
  RateLimitedError,
  type ReplicatorError,
  RetryableError,
  redactSecrets,
} from '../errors.js';

interface SdkRejection {
  message?: unknown;
  http_code?: unknown;
  code?: unknown;
  error?: { message?: unknown; http_code?: unknown };
}

/** The next full hour after `now`: Cloudinary's windows reset on the hour. */
export function nextHour(now: Date): Date {
  const d = new Date(now);
  d.setUTCMinutes(0, 0, 0);
  d.setUTCHours(d.getUTCHours() + 1);
  return d;
}

/** Reads the reset time out of "… Try again on 2025-08-08 17:00:00 UTC". */
export function resetFromMessage(message: string): Date | undefined {
  const m = /try again on (\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})\s*UTC/iu.exec(message);
  if (!m) return undefined;
  const date = new Date(`${m[1]}T${m[2]}Z`);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/** The HTTP status (NaN for socket errors) and message of an SDK rejection, without credentials. */
export function statusOf(raw: unknown): [status: number, message: string] {
  const r = (typeof raw === 'object' && raw !== null ? raw : { message: raw }) as SdkRejection;
  const nested = r.error && typeof r.error === 'object' ? r.error : undefined;
  const rawMessage = nested?.message ?? r.message ?? 'no message';
  const message = redactSecrets(
    typeof rawMessage === 'string'
      ? rawMessage
      : rawMessage instanceof Error
        ? rawMessage.message
        : String(rawMessage),
  );
  return [Number(nested?.http_code ?? r.http_code ?? NaN), message];
}

/**
 * Turns whatever the SDK rejected with — `{error:{message,http_code}}`, a flat
 * `{message,http_code}`, or a raw socket error — into one of our errors, without credentials.
 */
export function normalizeSdkError(raw: unknown, what: string, fallbackReset: () => Date): ReplicatorError {
  const r = (typeof raw === 'object' && raw !== null ? raw : { message: raw }) as SdkRejection;
  const [status, message] = statusOf(raw);
  const cause = undefined; // the raw rejection may carry request options: never chain it
  if (status === 420 || status === 429) {
    const resetAt = resetFromMessage(message) ?? fallbackReset();
    return new RateLimitedError(
      `${what}: Cloudinary Admin API rate limit reached (HTTP ${status}); resets at ${resetAt.toISOString()}`,
      resetAt,
      { cause },
    );
  }
  if (status === 401) {
    return new FatalError(
      `${what}: Cloudinary rejected the credentials (HTTP 401: ${message}). Check the API key and secret in CLOUDINARY_URL.`,
    );
  }
  if (status === 403) {
    return new FatalError(
      `${what}: Cloudinary refused access (HTTP 403: ${message}). Check the key's permissions.`,
    );
  }
  if (status === 404) return new AssetGoneError(`${what}: not found at Cloudinary (${message})`);
  if (status === 400 || status === 409) {
    return new PermanentAssetError(`${what}: Cloudinary rejected the request (HTTP ${status}: ${message})`);
  }
  if (Number.isFinite(status))
    return new RetryableError(`${what}: Cloudinary answered HTTP ${status} (${message})`);
  const code = typeof r.code === 'string' ? ` [${r.code}]` : '';
  return new RetryableError(`${what}: network error${code}: ${message}`);
}

import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Cloudinary signs each notification with `X-Cld-Signature` = hex SHA-1 or SHA-256 of the raw body,
 * then the `X-Cld-Timestamp` value, then the api_secret (https://cloudinary.com/documentation/notification_signatures;
 * /work/shared/CLOUDINARY.md "Incremental listing, renames, webhooks"). SHA-1 unless the account uses SHA-256.
 */
export type SignatureAlgorithm = 'sha1' | 'sha256';

export const SIGNATURE_ALGORITHMS: readonly SignatureAlgorithm[] = ['sha1', 'sha256'];

/**
 * How old a timestamp may be. Cloudinary retries about three times over roughly ten minutes and the
 * docs do not say whether a retry is signed anew, so a retry may carry the first try's timestamp:
 * 30 minutes lets the last retry in with margin, while a captured notification stops working soon after.
 * A replay inside the window is harmless: every action is idempotent.
 */
export const MAX_AGE_SECONDS = 30 * 60;
/** Clock skew tolerated for timestamps from the future. */
export const MAX_SKEW_SECONDS = 5 * 60;

export type Verdict = 'valid' | 'missing' | 'stale' | 'forged';

export interface SignedRequest {
  body: Buffer;
  timestamp: string | undefined;
  signature: string | undefined;
}

export function notificationSignature(
  body: Buffer,
  timestamp: string,
  secret: string,
  algorithm: SignatureAlgorithm,
): string {
  return createHash(algorithm).update(body).update(timestamp, 'utf8').update(secret, 'utf8').digest('hex');
}

/** Checks the timestamp window first (no hashing for a stale request), then the signature in constant time. */
export function verifyNotification(
  request: SignedRequest,
  secret: string,
  algorithm: SignatureAlgorithm,
  now: Date,
): Verdict {
  const { timestamp, signature } = request;
  if (
    !timestamp ||
    !signature ||
    !/^\d{1,12}$/u.test(timestamp) ||
    !/^[0-9a-fA-F]{1,128}$/u.test(signature)
  ) {
    return 'missing';
  }
  const age = now.getTime() / 1000 - Number(timestamp);
  if (age > MAX_AGE_SECONDS || age < -MAX_SKEW_SECONDS) return 'stale';
  const expected = Buffer.from(notificationSignature(request.body, timestamp, secret, algorithm), 'hex');
  const given = Buffer.from(signature.length % 2 === 0 ? signature : `0${signature}`, 'hex');
  // timingSafeEqual needs equal lengths; a length mismatch says nothing about the secret.
  if (given.length !== expected.length) return 'forged';
  return timingSafeEqual(given, expected) ? 'valid' : 'forged';
}

import { createHash, timingSafeEqual } from 'node:crypto';

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * The string the SDK signs for API requests (`utils.api_string_to_sign`): non-empty params sorted by
 * name, `k=v` joined by `&`; signature version 2 escapes `&` inside each pair as `%26`.
 */
export function apiStringToSign(params: ReadonlyMap<string, string>, signatureVersion: 1 | 2): string {
  return [...params]
    .filter(([, value]) => value !== '')
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, value]) => {
      const pair = `${key}=${value}`;
      return signatureVersion >= 2 ? pair.replace(/&/g, '%26') : pair;
    })
    .join('&');
}

/**
 * Checks a download API signature as the SDK computes it: hex SHA-1 (40 chars) or SHA-256 (64 chars) of
 * the string to sign plus the secret, under signature version 2 (the SDK's default) or 1 (older SDKs).
 */
export function verifyApiSignature(
  params: ReadonlyMap<string, string>,
  signature: string,
  secret: string,
): boolean {
  const algorithm = signature.length === 64 ? 'sha256' : 'sha1';
  return ([2, 1] as const).some((version) =>
    safeEqual(
      createHash(algorithm)
        .update(apiStringToSign(params, version) + secret)
        .digest('hex'),
      signature,
    ),
  );
}

/** How `utils.url` escapes the public id it signs: encodeURIComponent, but `/` and `:` stay. */
export function sdkEscapedPublicId(publicId: string): string {
  return encodeURIComponent(publicId).replace(/%3A/g, ':').replace(/%2F/g, '/');
}

function urlSignature(toSign: string, secret: string, algorithm: 'sha1' | 'sha256', length: number): string {
  return createHash(algorithm)
    .update(toSign + secret)
    .digest('base64')
    .slice(0, length)
    .replace(/\//g, '_')
    .replace(/\+/g, '-');
}

/** The `s--XXXXXXXX--` component the SDK's `url(id, { sign_url: true })` writes (for tests). */
export function deliverySignature(publicIdWithExtension: string, secret: string): string {
  return `s--${urlSignature(sdkEscapedPublicId(publicIdWithExtension), secret, 'sha1', 8)}--`;
}

/**
 * Checks a delivery URL signature: the first 8 URL-safe base64 chars of SHA-1 (or SHA-256 when the
 * account signs with it; 32 chars of SHA-256 for `long_url_signature`) of `public_id.ext` + secret.
 * The SDK signs the id as it escapes it in the URL; the decoded id is accepted too.
 */
export function verifyDeliverySignature(
  signature: string,
  publicIdWithExtension: string,
  secret: string,
): boolean {
  const candidates = new Set([sdkEscapedPublicId(publicIdWithExtension), publicIdWithExtension]);
  const variants: Array<['sha1' | 'sha256', number]> =
    signature.length === 32
      ? [['sha256', 32]]
      : [
          ['sha1', 8],
          ['sha256', 8],
        ];
  return [...candidates].some((toSign) =>
    variants.some(([algorithm, length]) =>
      safeEqual(urlSignature(toSign, secret, algorithm, length), signature),
    ),
  );
}

import { createHash } from 'node:crypto';
import { ASSETS_PREFIX, MAX_KEY_BYTES } from './constants.js';
import type { AssetRef, ResourceType } from './types.js';

// Characters escaped in keys: '%' (so decoding is unambiguous), controls, and what file systems or URLs reject.
// eslint-disable-next-line no-control-regex
const UNSAFE_CHARS = /[%\u0000-\u001f\u007f\\:*?"<>|#]/gu;
/** Marks a key whose public id was too long and was replaced by its hash ('#' never survives encoding). */
const HASHED_SEGMENT = '#hashed';

function escapeChar(ch: string): string {
  return [...Buffer.from(ch, 'utf8')]
    .map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`)
    .join('');
}

function encodeSegment(segment: string): string {
  if (/^\.+$/u.test(segment)) return segment.replace(/\./gu, '%2E');
  return segment.replace(UNSAFE_CHARS, escapeChar);
}

/**
 * Encodes a public id into a key path whose segments are never empty, `.` or `..` and hold no
 * character a file system or URL rejects. `decodePublicIdPath` reverses it exactly.
 */
export function encodePublicIdPath(publicId: string): string {
  const raw = publicId.split('/');
  const out: string[] = [];
  let current = encodeSegment(raw[0] ?? '');
  for (const next of raw.slice(1)) {
    if (current === '' || next === '' || current.endsWith('%2F')) {
      // A slash that would leave an empty segment is kept inside the segment, escaped.
      current = `${current}%2F${encodeSegment(next)}`;
    } else {
      out.push(current);
      current = encodeSegment(next);
    }
  }
  out.push(current);
  return out.join('/');
}

export function decodePublicIdPath(path: string): string {
  return path
    .split('/')
    .map((segment) => decodeURIComponent(segment))
    .join('/');
}

/** State key of an asset: `<resource_type>/<type>/<public_id>`. */
export function assetIdOf(ref: AssetRef): string {
  return `${ref.resourceType}/${ref.deliveryType}/${ref.publicId}`;
}

export function extensionFor(resourceType: ResourceType, format: string | undefined): string {
  // Raw public ids already carry their extension.
  return format && resourceType !== 'raw' ? `.${encodeSegment(format)}` : '';
}

/**
 * Object key of an asset's copy: `assets/<resource_type>/<type>/<public_id>[.<format>]`.
 * Keys over S3's 1,024-byte limit fall back to `…/#hashed/<sha256 of public id>[.<format>]`.
 */
export function objectKeyFor(asset: AssetRef & { format?: string }): string {
  const base = `${ASSETS_PREFIX}${asset.resourceType}/${encodeSegment(asset.deliveryType)}/`;
  const ext = extensionFor(asset.resourceType, asset.format);
  const key = `${base}${encodePublicIdPath(asset.publicId)}${ext}`;
  if (Buffer.byteLength(key, 'utf8') <= MAX_KEY_BYTES) return key;
  const digest = createHash('sha256').update(asset.publicId, 'utf8').digest('hex');
  return `${base}${HASHED_SEGMENT}/${digest}${ext}`;
}

export interface DecodedKey {
  resourceType: string;
  deliveryType: string;
  /** The public id followed by `.<format>` when one was appended; undefined for hashed keys. */
  publicIdWithExtension?: string;
  hashed: boolean;
}

/** Reads an asset key back; returns undefined for keys outside `assets/`. */
export function decodeObjectKey(key: string): DecodedKey | undefined {
  if (!key.startsWith(ASSETS_PREFIX)) return undefined;
  const [resourceType, deliveryType, ...rest] = key.slice(ASSETS_PREFIX.length).split('/');
  if (!resourceType || !deliveryType || rest.length === 0) return undefined;
  const path = rest.join('/');
  if (rest[0] === HASHED_SEGMENT)
    return { resourceType, deliveryType: decodeURIComponent(deliveryType), hashed: true };
  return {
    resourceType,
    deliveryType: decodeURIComponent(deliveryType),
    publicIdWithExtension: decodePublicIdPath(path),
    hashed: false,
  };
}

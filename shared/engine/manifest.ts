import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { promisify } from 'node:util';
import { createGunzip, gunzip as gunzipCallback, gzip as gzipCallback } from 'node:zlib';
import { createInterface } from 'node:readline';
import { MANIFESTS_PREFIX, META } from '../constants.js';
import { assetIdOf, objectKeyFor } from '../keys.js';
import type { ObjectStore, SourceAsset } from '../types.js';

// In libuv's pool: a page's compression never stalls the downloads on the event loop.
const gzip = promisify(gzipCallback);
const gunzip = promisify(gunzipCallback);

/** One manifest line: an asset as listed, with its metadata and where its copy lives. */
export interface ManifestEntry {
  id: string;
  resourceType: string;
  deliveryType: string;
  publicId: string;
  assetId: string;
  version: number;
  format?: string;
  bytes: number;
  etag?: string;
  createdAt: string;
  tags?: string[];
  context?: Record<string, unknown>;
  metadata?: Record<string, unknown>;
  objectKey: string;
  /** What the listing could not give (`metadata` refused by the Search tier, `etag` without Search). */
  unavailable?: string[];
  /** In a local backup: the file's path inside the folder (`_unsafe/...` for a name that cannot be a path). */
  localPath?: string;
  /**
   * `changes`: listed by a run that listed only what changed (coverage.ts), so its manifest is not
   * the whole library; absent in a complete listing.
   */
  listing?: 'changes';
}

export function manifestEntry(
  asset: SourceAsset,
  localPath?: (key: string) => string,
  listing?: 'changes',
): ManifestEntry {
  const objectKey = objectKeyFor(asset);
  return {
    id: assetIdOf(asset),
    resourceType: asset.resourceType,
    deliveryType: asset.deliveryType,
    publicId: asset.publicId,
    assetId: asset.assetId,
    version: asset.version,
    format: asset.format,
    bytes: asset.bytes,
    etag: asset.etag,
    createdAt: asset.createdAt,
    tags: asset.tags,
    context: asset.context,
    metadata: asset.metadata,
    objectKey,
    unavailable: asset.unavailable,
    localPath: localPath?.(objectKey),
    ...(listing ? { listing } : {}),
  };
}

export function manifestPrefix(runId: string): string {
  return `${MANIFESTS_PREFIX}${runId}/`;
}

/** Key of one listing page's part; a page listed again overwrites its own part. */
export function manifestPartKey(runId: string, listing: string, page: number): string {
  return `${manifestPrefix(runId)}parts/${listing}/${String(page).padStart(6, '0')}.jsonl.gz`;
}

export function manifestKey(runId: string): string {
  return `${manifestPrefix(runId)}manifest.jsonl.gz`;
}

/** Writes one page's entries as a gzip member; concatenated members form one valid gzip file. */
export async function writeManifestPart(
  store: ObjectStore,
  key: string,
  assets: SourceAsset[],
  listing?: 'changes',
): Promise<void> {
  const body = await gzip(
    assets.map((a) => JSON.stringify(manifestEntry(a, store.localPathOf?.bind(store), listing))).join('\n') +
      (assets.length ? '\n' : ''),
  );
  // The MD5 goes in with the object: a store never has to tag a version after the fact.
  await store.put(key, Readable.from([body]), {
    metadata: { [META.md5]: md5Hex(body), 'manifest-entries': String(assets.length) },
    contentType: 'application/gzip',
    expected: { bytes: body.length },
  });
}

function md5Hex(bytes: Buffer): string {
  return createHash('md5').update(bytes).digest('hex');
}

/** Size and MD5 of a run's parts joined in order: what the final manifest will hold. */
export interface ManifestDigest {
  bytes: number;
  md5: string;
}

/**
 * Reads a run's parts in order, handing each part's entry ids to `onIds`, and returns the size
 * and MD5 of their concatenation. Reads `lookahead` parts ahead; each part is one page (≤ 500
 * entries), so memory stays small whatever the run's size.
 */
export async function digestManifestParts(
  store: ObjectStore,
  parts: string[],
  onIds: (ids: string[]) => void,
  lookahead = 8,
): Promise<ManifestDigest> {
  const hash = createHash('md5');
  let bytes = 0;
  const pending: Promise<Buffer>[] = [];
  const fetch = (index: number) => {
    const part = parts[index];
    if (part !== undefined) pending.push(store.get(part).then((body) => buffer(body)));
  };
  for (let i = 0; i < lookahead; i++) fetch(i);
  for (let index = 0; index < parts.length; index++) {
    const body = await (pending.shift() as Promise<Buffer>);
    fetch(index + lookahead);
    hash.update(body);
    bytes += body.length;
    const ids: string[] = [];
    for (const line of (await gunzip(body)).toString('utf8').split('\n')) {
      if (line.trim() !== '') ids.push((JSON.parse(line) as ManifestEntry).id);
    }
    onIds(ids);
  }
  return { bytes, md5: hash.digest('hex') };
}

/** Reads every entry of a gzipped JSON Lines object (one or many members). */
export async function* readManifest(store: ObjectStore, key: string): AsyncIterable<ManifestEntry> {
  const lines = createInterface({ input: (await store.get(key)).pipe(createGunzip()), crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.trim() !== '') yield JSON.parse(line) as ManifestEntry;
  }
}

/** The parts written so far for a run, in listing and page order. */
export async function manifestParts(store: ObjectStore, runId: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const object of store.list(`${manifestPrefix(runId)}parts/`)) keys.push(object.key);
  return keys.sort();
}

/**
 * Joins a run's parts into `manifests/<runId>/manifest.jsonl.gz`, streaming part after part; the
 * digest (from digestManifestParts) goes in as metadata and the store verifies the bytes against it.
 */
export async function writeFinalManifest(
  store: ObjectStore,
  runId: string,
  parts: string[],
  digest: ManifestDigest,
): Promise<string> {
  async function* concatenated(): AsyncIterable<Buffer> {
    for (const part of parts) {
      for await (const chunk of await store.get(part)) yield chunk as Buffer;
    }
  }
  const key = manifestKey(runId);
  await store.put(key, Readable.from(concatenated()), {
    metadata: { [META.md5]: digest.md5, 'manifest-parts': String(parts.length) },
    contentType: 'application/gzip',
    sizeHint: digest.bytes,
    expected: { bytes: digest.bytes, md5: digest.md5 },
  });
  return key;
}

import { Readable } from 'node:stream';
import { createGunzip, gzipSync } from 'node:zlib';
import { createInterface } from 'node:readline';
import { MANIFESTS_PREFIX } from '../constants.js';
import { assetIdOf, objectKeyFor } from '../keys.js';
import type { ObjectStore, SourceAsset } from '../types.js';

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
  /** In a local backup: the file's path inside the folder (`_unsafe/...` for a name that cannot be a path). */
  localPath?: string;
}

export function manifestEntry(asset: SourceAsset, localPath?: (key: string) => string): ManifestEntry {
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
    localPath: localPath?.(objectKey),
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
): Promise<void> {
  const body = gzipSync(
    assets.map((a) => JSON.stringify(manifestEntry(a, store.localPathOf?.bind(store)))).join('\n') +
      (assets.length ? '\n' : ''),
  );
  await store.put(key, Readable.from([body]), {
    metadata: { 'manifest-entries': String(assets.length) },
    contentType: 'application/gzip',
  });
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

/** Joins a run's parts into `manifests/<runId>/manifest.jsonl.gz`, streaming part after part. */
export async function writeFinalManifest(
  store: ObjectStore,
  runId: string,
  parts: string[],
): Promise<string> {
  async function* concatenated(): AsyncIterable<Buffer> {
    for (const part of parts) {
      for await (const chunk of await store.get(part)) yield chunk as Buffer;
    }
  }
  const key = manifestKey(runId);
  await store.put(key, Readable.from(concatenated()), {
    metadata: { 'manifest-parts': String(parts.length) },
    contentType: 'application/gzip',
  });
  return key;
}

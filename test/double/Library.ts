import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { contentReadable, contentSlices, hashContent } from './content.js';
import { orderAssets, orderId } from './ordering.js';
import type { OrderedAssets, SortOrder } from './ordering.js';
import { isoSeconds } from './time.js';
import type { AssetSpec, ContentRef, DoubleAsset, ResourceType, VersionRecord } from './types.js';

export const RESOURCE_TYPES: readonly ResourceType[] = ['image', 'video', 'raw'];

/** Which assets an index covers: one resource type, optionally one delivery type; everything when empty. */
export interface Scope {
  resourceType?: ResourceType;
  type?: string;
}

function keyOf(resourceType: string, type: string, publicId: string): string {
  return `${resourceType}\u0000${type}\u0000${publicId}`;
}

function md5Hex(text: string): string {
  return createHash('md5').update(text).digest('hex');
}

function folderOf(publicId: string): string {
  const slash = publicId.lastIndexOf('/');
  return slash < 0 ? '' : publicId.slice(0, slash);
}

function baseNameOf(publicId: string): string {
  return publicId.slice(publicId.lastIndexOf('/') + 1);
}

/**
 * The double's in-memory media library: an index of assets, never their bytes (those are regenerated
 * from the seed, the asset id and the version, see content.ts).
 *
 * Unconfirmed upstream, chosen here: an overwrite keeps `asset_id` and `created_at` (first upload) and
 * moves `version`/`uploaded_at`; a rename keeps `asset_id`, `version` and the bytes; a deleted public id
 * uploaded again gets a new `asset_id`.
 */
export class Library {
  readonly seed: string;
  #assets = new Map<string, DoubleAsset>();
  #byAssetId = new Map<string, DoubleAsset>();
  #serial = 0;
  #generation = 0;
  #indexes = new Map<string, OrderedAssets>();
  #md5 = new Map<string, Promise<string>>();
  #now: () => Date = () => new Date();

  constructor(seed: number | string = 1) {
    this.seed = String(seed);
  }

  /** The double hands its clock in, so uploads and overwrites are stamped with test time. */
  useClock(now: () => Date): void {
    this.#now = now;
  }

  /** Bumped by every mutation; indexes and search caches key on it. */
  get generation(): number {
    return this.#generation;
  }

  get size(): number {
    return this.#assets.size;
  }

  add(spec: AssetSpec): DoubleAsset {
    const type = spec.type ?? 'upload';
    if (spec.publicId.length === 0) throw new Error('publicId must not be empty');
    if (!RESOURCE_TYPES.includes(spec.resourceType))
      throw new Error(`unknown resource type ${spec.resourceType}`);
    if (!Number.isSafeInteger(spec.bytes) || spec.bytes < 0) throw new Error(`bad size ${spec.bytes}`);
    const key = keyOf(spec.resourceType, type, spec.publicId);
    if (this.#assets.has(key))
      throw new Error(`${spec.resourceType}/${type}/${spec.publicId} already exists`);

    this.#serial += 1;
    const assetId = md5Hex(`${this.seed}\0asset\0${this.#serial}`);
    const createdMs = (spec.createdAt ?? this.#now()).getTime();
    const version = Math.floor(createdMs / 1000);
    const at = isoSeconds(createdMs);
    const format =
      spec.resourceType === 'raw' ? spec.format : (spec.format ?? defaultFormat(spec.resourceType));
    const shape = defaultShape(spec, assetId);
    const asset: DoubleAsset = {
      asset_id: assetId,
      public_id: spec.publicId,
      format,
      version,
      version_id: md5Hex(`${assetId}\0${version}`),
      resource_type: spec.resourceType,
      type,
      created_at: at,
      uploaded_at: at,
      updated_at: at,
      bytes: spec.bytes,
      width: shape.width,
      height: shape.height,
      duration: shape.duration,
      tags: [...(spec.tags ?? [])],
      context: { ...spec.context },
      metadata: { ...spec.metadata },
      asset_folder: spec.assetFolder ?? folderOf(spec.publicId),
      display_name: spec.displayName ?? baseNameOf(spec.publicId),
      tags_updated_at: undefined,
      context_updated_at: undefined,
      metadata_updated_at: undefined,
      public_id_updated_at: undefined,
      versions: [],
    };
    return this.#store({ ...asset, versions: [versionRecord(asset)] });
  }

  /** A new upload over an existing public id: a strictly greater version and new bytes. */
  overwrite(resourceType: ResourceType, type: string, publicId: string, newBytes?: number): DoubleAsset {
    const current = this.#require(resourceType, type, publicId);
    const version = Math.max(Math.floor(this.#now().getTime() / 1000), current.version + 1);
    const at = isoSeconds(version * 1000);
    const next: DoubleAsset = {
      ...current,
      version,
      version_id: md5Hex(`${current.asset_id}\0${version}`),
      uploaded_at: at,
      updated_at: at,
      bytes: newBytes ?? current.bytes,
    };
    return this.#store({ ...next, versions: [...current.versions, versionRecord(next)] });
  }

  /** Tag/context/metadata edits: the version stays, `last_updated` moves. */
  update(
    resourceType: ResourceType,
    type: string,
    publicId: string,
    changes: { tags?: string[]; context?: Record<string, string>; metadata?: Record<string, unknown> },
  ): DoubleAsset {
    const current = this.#require(resourceType, type, publicId);
    const at = isoSeconds(this.#now().getTime());
    return this.#store({
      ...current,
      updated_at: at,
      ...(changes.tags && { tags: [...changes.tags], tags_updated_at: at }),
      ...(changes.context && { context: { ...changes.context }, context_updated_at: at }),
      ...(changes.metadata && { metadata: { ...changes.metadata }, metadata_updated_at: at }),
    });
  }

  delete(resourceType: ResourceType, type: string, publicId: string): void {
    const current = this.#require(resourceType, type, publicId);
    this.#assets.delete(keyOf(resourceType, type, publicId));
    this.#byAssetId.delete(current.asset_id);
    this.#changed();
  }

  rename(resourceType: ResourceType, type: string, from: string, to: string): DoubleAsset {
    const current = this.#require(resourceType, type, from);
    if (to.length === 0) throw new Error('publicId must not be empty');
    if (this.#assets.has(keyOf(resourceType, type, to)))
      throw new Error(`${resourceType}/${type}/${to} already exists`);
    this.#assets.delete(keyOf(resourceType, type, from));
    const at = isoSeconds(this.#now().getTime());
    return this.#store({ ...current, public_id: to, updated_at: at, public_id_updated_at: at });
  }

  get(resourceType: ResourceType, type: string, publicId: string): DoubleAsset | undefined {
    return this.#assets.get(keyOf(resourceType, type, publicId));
  }

  getByAssetId(assetId: string): DoubleAsset | undefined {
    return this.#byAssetId.get(assetId);
  }

  /** Every asset, sorted by resource_type, type, public_id. */
  all(): DoubleAsset[] {
    return [...this.#assets.values()].sort(
      (a, b) => cmp(a.resource_type, b.resource_type) || cmp(a.type, b.type) || cmp(a.public_id, b.public_id),
    );
  }

  /** A cached index of the assets in `scope`, in `order` (rebuilt after any mutation). */
  ordered(scope: Scope, order: SortOrder): OrderedAssets {
    const cacheKey = `${scope.resourceType ?? '*'}\u0000${scope.type ?? '*'}\u0000${orderId(order)}`;
    let index = this.#indexes.get(cacheKey);
    if (index === undefined) {
      index = orderAssets(this.#inScope(scope), order);
      this.#indexes.set(cacheKey, index);
    }
    return index;
  }

  /** MD5 hex of the bytes served for this version, computed once by streaming and cached. */
  md5Of(ref: ContentRef): Promise<string> {
    const cacheKey = `${ref.asset_id}\0${ref.version}\0${ref.bytes}`;
    let digest = this.#md5.get(cacheKey);
    if (digest === undefined) {
      digest = hashContent(this.seed, ref);
      this.#md5.set(cacheKey, digest);
    }
    return digest;
  }

  /** Deterministic bytes of this version, [start, endInclusive], streamed with backpressure. */
  contentStream(ref: ContentRef, start?: number, endInclusive?: number): Readable {
    return contentReadable(this.seed, ref, start, endInclusive);
  }

  /** The same bytes as shared read-only slices, for writers that want no stream machinery. */
  contentSlices(ref: ContentRef, start = 0, endExclusive = ref.bytes): Iterable<Buffer> {
    return contentSlices(this.seed, ref, start, endExclusive);
  }

  *#inScope(scope: Scope): Generator<DoubleAsset> {
    for (const asset of this.#assets.values()) {
      if (scope.resourceType !== undefined && asset.resource_type !== scope.resourceType) continue;
      if (scope.type !== undefined && asset.type !== scope.type) continue;
      yield asset;
    }
  }

  #require(resourceType: ResourceType, type: string, publicId: string): DoubleAsset {
    const asset = this.get(resourceType, type, publicId);
    if (asset === undefined) throw new Error(`no asset ${resourceType}/${type}/${publicId}`);
    return asset;
  }

  #store(asset: DoubleAsset): DoubleAsset {
    this.#assets.set(keyOf(asset.resource_type, asset.type, asset.public_id), asset);
    this.#byAssetId.set(asset.asset_id, asset);
    this.#changed();
    return asset;
  }

  #changed(): void {
    this.#generation += 1;
    this.#indexes.clear();
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function versionRecord(asset: DoubleAsset): VersionRecord {
  return {
    version: asset.version,
    version_id: asset.version_id,
    format: asset.format,
    bytes: asset.bytes,
    uploaded_at: asset.uploaded_at,
  };
}

function defaultFormat(resourceType: ResourceType): string {
  return resourceType === 'video' ? 'mp4' : 'jpg';
}

function defaultShape(
  spec: AssetSpec,
  assetId: string,
): { width: number | undefined; height: number | undefined; duration: number | undefined } {
  if (spec.resourceType === 'raw') return { width: undefined, height: undefined, duration: undefined };
  const h = Number.parseInt(assetId.slice(0, 8), 16);
  if (spec.resourceType === 'video') {
    return {
      width: spec.width ?? 1920,
      height: spec.height ?? 1080,
      // About 5 MB per second of footage.
      duration: Math.max(1, Math.round(spec.bytes / 5_000_000)),
    };
  }
  const width = spec.width ?? 640 + (h % 5360);
  return { width, height: spec.height ?? Math.round((width * 2) / 3), duration: undefined };
}

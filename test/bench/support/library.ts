import { CloudinarySource } from '../../../shared/cloudinary/CloudinarySource.js';
import { DEFAULT_SETTINGS, listingsOf, parseCloudinaryUrl } from '../../../shared/config.js';
import type { SourceAsset } from '../../../shared/types.js';
import type { CloudinaryDouble, DoubleAsset, Library } from '../../double/index.js';

/** Cloudinary's page size: the floor is one Admin call per 500 assets per listing. */
const PAGE_SIZE = 500;

/** An asset as a listing would describe it, with the etag the search API reports. */
export async function sourceAssetOf(library: Library, asset: DoubleAsset): Promise<SourceAsset> {
  return {
    assetId: asset.asset_id,
    publicId: asset.public_id,
    resourceType: asset.resource_type,
    deliveryType: asset.type,
    version: asset.version,
    format: asset.format,
    bytes: asset.bytes,
    etag: await library.md5Of(asset),
    createdAt: asset.created_at,
  };
}

export function totalBytes(library: Library): number {
  return library.all().reduce((sum, asset) => sum + asset.bytes, 0);
}

/**
 * The fewest Admin calls a full listing can take with the default settings (3 resource types ×
 * 3 delivery types): Σ ceil(n / 500) over the listings, an empty listing still costing one call.
 */
export function adminCallFloor(library: Library): number {
  const assets = library.all();
  return listingsOf(DEFAULT_SETTINGS).reduce((calls, listing) => {
    const n = assets.filter(
      (a) => a.resource_type === listing.resourceType && a.type === listing.deliveryType,
    ).length;
    return calls + Math.max(1, Math.ceil(n / PAGE_SIZE));
  }, 0);
}

/** The URLs the tool itself would fetch (signed where the type needs it), for the baseline client. */
export async function originalUrls(double: CloudinaryDouble): Promise<string[]> {
  const source = new CloudinarySource({ credentials: parseCloudinaryUrl(double.cloudinaryUrl) });
  const urls: string[] = [];
  for (const asset of double.library.all()) {
    urls.push(await source.originalUrl(await sourceAssetOf(double.library, asset)));
  }
  return urls;
}

/** Computes (and caches in the library) every asset's MD5, as the search API reports it. */
export async function warmEtags(library: Library): Promise<number> {
  const started = performance.now();
  for (const asset of library.all()) await library.md5Of(asset);
  return (performance.now() - started) / 1000;
}

import type { DoubleAsset } from './types.js';

/** Where the double's delivery answers, to build `url`/`secure_url`. */
export interface DeliveryBase {
  origin: string;
  cloudName: string;
}

type Json = Record<string, unknown>;

/** Always returned, whatever `fields` asks for. */
const ALWAYS_FIELDS = ['public_id', 'asset_id', 'resource_type', 'type'];

/** Each segment percent-encoded; `.`/`..` segments too, for clients that do not normalise dot segments. */
export function encodePublicIdPath(publicId: string): string {
  return publicId
    .split('/')
    .map((segment) =>
      segment === '.' || segment === '..' ? segment.replace(/\./g, '%2E') : encodeURIComponent(segment),
    )
    .join('/');
}

/** The versioned delivery URL of the original, as Cloudinary puts it in `secure_url`. */
export function deliveryUrl(base: DeliveryBase, asset: DoubleAsset, version = asset.version): string {
  const extension = asset.resource_type !== 'raw' && asset.format !== undefined ? `.${asset.format}` : '';
  return `${base.origin}/${encodeURIComponent(base.cloudName)}/${asset.resource_type}/${encodeURIComponent(asset.type)}/v${version}/${encodePublicIdPath(asset.public_id)}${extension}`;
}

function folderOf(publicId: string): string {
  const slash = publicId.lastIndexOf('/');
  return slash < 0 ? '' : publicId.slice(0, slash);
}

function commonFields(base: DeliveryBase, asset: DoubleAsset): Json {
  const url = deliveryUrl(base, asset);
  return {
    asset_id: asset.asset_id,
    public_id: asset.public_id,
    ...(asset.resource_type !== 'raw' && asset.format !== undefined && { format: asset.format }),
    version: asset.version,
    resource_type: asset.resource_type,
    type: asset.type,
    created_at: asset.created_at,
    bytes: asset.bytes,
    ...(asset.width !== undefined && { width: asset.width }),
    ...(asset.height !== undefined && { height: asset.height }),
    ...(asset.duration !== undefined && { duration: asset.duration }),
    asset_folder: asset.asset_folder,
    display_name: asset.display_name,
    // The double speaks plain HTTP: both point at it.
    url,
    secure_url: url,
  };
}

function pickFields(item: Json, fields: readonly string[] | undefined): Json {
  if (fields === undefined || fields.length === 0) return item;
  const keep = new Set([...ALWAYS_FIELDS, ...fields]);
  return Object.fromEntries(Object.entries(item).filter(([key]) => keep.has(key)));
}

export interface Extras {
  tags: boolean;
  context: boolean;
  metadata: boolean;
}

function hasEntries(record: Readonly<Record<string, unknown>>): boolean {
  return Object.keys(record).length > 0;
}

/** An item of `GET /resources/...`: no etag; tags/context/metadata only when asked (or named in `fields`). */
export function listItem(
  base: DeliveryBase,
  asset: DoubleAsset,
  extras: Extras,
  fields?: readonly string[],
): Json {
  const wants = (name: keyof Extras): boolean => extras[name] || (fields?.includes(name) ?? false);
  const item: Json = {
    ...commonFields(base, asset),
    ...(wants('tags') && { tags: [...asset.tags] }),
    ...(wants('context') && hasEntries(asset.context) && { context: { custom: { ...asset.context } } }),
    ...(wants('metadata') && hasEntries(asset.metadata) && { metadata: { ...asset.metadata } }),
  };
  return pickFields(item, fields);
}

function lastUpdated(asset: DoubleAsset): Json {
  return {
    updated_at: asset.updated_at,
    ...(asset.tags_updated_at !== undefined && { tags_updated_at: asset.tags_updated_at }),
    ...(asset.context_updated_at !== undefined && { context_updated_at: asset.context_updated_at }),
    ...(asset.metadata_updated_at !== undefined && { metadata_updated_at: asset.metadata_updated_at }),
    ...(asset.public_id_updated_at !== undefined && { public_id_updated_at: asset.public_id_updated_at }),
  };
}

/** `GET /resources/<rt>/<type>/<public_id>`: etag (MD5 hex), last_updated, versions when asked. */
export function detailsItem(
  base: DeliveryBase,
  asset: DoubleAsset,
  etag: string,
  withVersions: boolean,
): Json {
  return {
    ...commonFields(base, asset),
    tags: [...asset.tags],
    ...(hasEntries(asset.context) && { context: { custom: { ...asset.context } } }),
    ...(hasEntries(asset.metadata) && { metadata: { ...asset.metadata } }),
    placeholder: false,
    etag,
    last_updated: lastUpdated(asset),
    derived: [],
    ...(withVersions && {
      versions: [...asset.versions].reverse().map((v) => ({
        version_id: v.version_id,
        version: String(v.version),
        format: v.format,
        size: v.bytes,
        time: v.uploaded_at,
        restorable: false,
      })),
    }),
  };
}

export function searchItemNeedsEtag(fields: readonly string[] | undefined): boolean {
  return fields === undefined || fields.length === 0 || fields.includes('etag');
}

/** A search result: etag included; context comes flat (not under `custom`) as search returns it. */
export function searchItem(
  base: DeliveryBase,
  asset: DoubleAsset,
  etag: string | undefined,
  withFields: readonly string[],
  fields: readonly string[] | undefined,
): Json {
  const wants = (name: string): boolean => withFields.includes(name) || (fields?.includes(name) ?? false);
  const common = commonFields(base, asset);
  const filename = asset.public_id.slice(asset.public_id.lastIndexOf('/') + 1);
  const item: Json = {
    asset_id: common.asset_id,
    public_id: common.public_id,
    folder: folderOf(asset.public_id),
    asset_folder: asset.asset_folder,
    filename,
    display_name: asset.display_name,
    ...common,
    uploaded_at: asset.uploaded_at,
    backup_bytes: 0,
    ...(asset.width !== undefined &&
      asset.height !== undefined && {
        aspect_ratio: Math.round((asset.width / asset.height) * 1e5) / 1e5,
        pixels: asset.width * asset.height,
      }),
    status: 'active',
    access_mode: 'public',
    access_control: null,
    ...(etag !== undefined && { etag }),
    created_by: null,
    uploaded_by: null,
    last_updated: lastUpdated(asset),
    ...(wants('tags') && { tags: [...asset.tags] }),
    ...(wants('context') && hasEntries(asset.context) && { context: { ...asset.context } }),
    ...(wants('metadata') && hasEntries(asset.metadata) && { metadata: { ...asset.metadata } }),
  };
  return pickFields(item, fields);
}

/** Prefix under which asset copies live, in the bucket and in a local backup folder alike. */
export const ASSETS_PREFIX = 'assets/';
/** Prefix of the per-run manifests (gzipped JSON Lines). */
export const MANIFESTS_PREFIX = 'manifests/';
/** Folder inside a local destination that holds state, indexes and partial files. */
export const LOCAL_CONTROL_DIR = '.cloudinary-backup';

/** S3's limit on a key's length, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;

/** Names of the user metadata written on every asset copy (x-amz-meta-*). */
export const META = {
  publicId: 'public-id',
  /** Instead of `public-id` when the id is too long for S3's 2 KB of metadata. */
  publicIdSha256: 'public-id-sha256',
  assetId: 'asset-id',
  version: 'version',
  md5: 'md5',
  bytes: 'bytes',
  createdAt: 'created-at',
  resourceType: 'resource-type',
  deliveryType: 'delivery-type',
  format: 'format',
} as const;

export const RESOURCE_TYPES = ['image', 'video', 'raw'] as const;
export const DEFAULT_DELIVERY_TYPES = ['upload', 'private', 'authenticated'] as const;
/** Cloudinary's page size ceiling for listings and search. */
export const MAX_PAGE_SIZE = 500;

/** The run id of work items a webhook notification enqueued: they belong to no listing run. */
export const WEBHOOK_RUN_ID = 'webhook';

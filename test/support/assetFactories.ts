import type { AssetState, SourceAsset } from '../../shared/types.js';

/** A listed image `image/upload/a`, version 10, 100 bytes; override what a test is about. */
export const sourceAsset = (over: Partial<SourceAsset> = {}): SourceAsset => ({
  resourceType: 'image',
  deliveryType: 'upload',
  publicId: 'a',
  assetId: 'x',
  version: 10,
  bytes: 100,
  createdAt: '2024-01-01T00:00:00Z',
  ...over,
});

/** The replicated state of that asset's version 10; override what a test is about. */
export const assetState = (over: Partial<AssetState> = {}): AssetState => ({
  id: 'image/upload/a',
  resourceType: 'image',
  deliveryType: 'upload',
  publicId: 'a',
  version: 10,
  bytes: 100,
  objectKey: 'assets/image/upload/a',
  status: 'replicated',
  attempts: 0,
  ...over,
});

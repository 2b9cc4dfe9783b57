import type { AssetState, SourceAsset, StateStore } from '../types.js';

/** States whose object holds a verified copy (a renamed or deleted id keeps its object). */
const HOLDS_COPY: ReadonlySet<AssetState['status']> = new Set(['replicated', 'renamed', 'deleted-at-source']);

/**
 * The copy already backed up under another public id that `asset` is a rename of: same asset_id,
 * version and size (a rename keeps them, CLOUDINARY.md "Incremental listing, renames"), and the same
 * MD5 when the source gives one. Undefined when there is none (or the store cannot look it up).
 */
export async function renameSourceOf(
  state: StateStore,
  asset: SourceAsset,
  id: string,
): Promise<(AssetState & { md5: string }) | undefined> {
  if (!asset.assetId || !state.findByAssetId) return undefined;
  const candidates = await state.findByAssetId(asset.assetId);
  return candidates.find(
    (candidate): candidate is AssetState & { md5: string } =>
      candidate.id !== id &&
      candidate.assetId === asset.assetId &&
      HOLDS_COPY.has(candidate.status) &&
      candidate.replicatedAt !== undefined &&
      typeof candidate.md5 === 'string' &&
      candidate.version === asset.version &&
      candidate.bytes === asset.bytes &&
      (!asset.etag || candidate.md5 === asset.etag),
  );
}

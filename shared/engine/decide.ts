import type { AssetState, SourceAsset } from '../types.js';

/**
 * Whether an asset must be copied: it has no state, its version or byte count differs from what
 * was copied, or its last copy did not succeed.
 */
export function needsTransfer(asset: SourceAsset, state: AssetState | undefined): boolean {
  if (!state) return true;
  if (state.status !== 'replicated') return true;
  return state.version !== asset.version || state.bytes !== asset.bytes;
}

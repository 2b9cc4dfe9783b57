import type { AssetState, SourceAsset } from '../types.js';

export interface TransferOptions {
  /** Retry quarantined assets too (an explicit redrive). */
  redrive?: boolean;
}

/**
 * Whether an asset must be copied: it has no state, its version or byte count differs from what
 * was copied, or its last copy did not succeed. A quarantined version (a permanent failure) is
 * not tried again until its version or size changes, unless `redrive` asks for it.
 */
export function needsTransfer(
  asset: SourceAsset,
  state: AssetState | undefined,
  options: TransferOptions = {},
): boolean {
  if (!state) return true;
  if (!options.redrive && isQuarantined(asset, state)) return false;
  if (state.status !== 'replicated') return true;
  return state.version !== asset.version || state.bytes !== asset.bytes;
}

/** Whether this version and size of the asset failed permanently and waits for a redrive. */
export function isQuarantined(asset: Pick<SourceAsset, 'version' | 'bytes'>, state: AssetState): boolean {
  if (state.status === 'quarantined') return state.version === asset.version && state.bytes === asset.bytes;
  return (
    state.status === 'replicated' &&
    state.quarantinedVersion === asset.version &&
    state.quarantinedBytes === asset.bytes
  );
}

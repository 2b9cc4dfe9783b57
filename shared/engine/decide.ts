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
  if (state.version !== asset.version || state.bytes !== asset.bytes) return true;
  return etagCheckOf(asset, state) === 'mismatch';
}

/**
 * What an etag now given by the source says about a copy of the same version: its MD5 differs (a
 * corrupted copy that passed a size-only check: copy again), or it matches a copy verified by size
 * only (upgrade it to md5-verified, no download). Undefined: nothing to do.
 */
export function etagCheckOf(
  asset: SourceAsset,
  state: AssetState | undefined,
): 'mismatch' | 'upgrade' | undefined {
  if (!asset.etag || state?.status !== 'replicated' || state.version !== asset.version) return undefined;
  if (state.md5 !== asset.etag) return 'mismatch';
  return state.verifiedBy === 'size' ? 'upgrade' : undefined;
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

import { BatchWriteItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { assetItem, assetKey } from '../../shared/aws/DynamoStateStore.js';
import { settingsKeyOf } from '../../shared/engine/coverage.js';
import { emptyCounters, newRunId } from '../../shared/engine/enumerate.js';
import { objectKeyFor } from '../../shared/keys.js';
import { mapLimit } from '../../shared/concurrency.js';
import type { EngineSettings } from '../../shared/config.js';
import type { AssetState, RunRecord, StateStore } from '../../shared/types.js';
import type { DoubleAsset } from '../double/types.js';
import { idOf } from './pipelineBed.js';

/** The state a completed copy of `asset` leaves (what recordReplicated writes). */
export function replicatedState(asset: DoubleAsset, md5: string, runId: string, at: string): AssetState {
  const ref = { resourceType: asset.resource_type, deliveryType: asset.type, publicId: asset.public_id };
  return {
    id: idOf(asset),
    ...ref,
    assetId: asset.asset_id,
    version: asset.version,
    bytes: asset.bytes,
    md5,
    objectKey: objectKeyFor({ ...ref, format: asset.format }),
    status: 'replicated',
    replicatedAt: at,
    lastSeenRun: runId,
    attempts: 0,
    verifiedBy: 'md5',
  };
}

/**
 * Writes asset states straight into the table (25 per BatchWriteItem, several at once): a library
 * already backed up, without copying it (`md5Of`: the library's MD5 of each asset).
 */
export async function seedDynamoStates(
  dynamo: DynamoDBClient,
  table: string,
  assets: readonly DoubleAsset[],
  md5Of: (asset: DoubleAsset) => Promise<string>,
  runId: string,
  at: string,
): Promise<void> {
  const chunks: DoubleAsset[][] = [];
  for (let i = 0; i < assets.length; i += 25) chunks.push(assets.slice(i, i + 25));
  await mapLimit(chunks, 8, async (chunk) => {
    const md5s = await Promise.all(chunk.map(md5Of));
    let requests = chunk.map((asset, i) => ({
      PutRequest: {
        Item: {
          ...assetKey(idOf(asset)),
          ...assetItem(replicatedState(asset, md5s[i] ?? '', runId, at)),
        },
      },
    }));
    while (requests.length > 0) {
      const result = await dynamo.send(new BatchWriteItemCommand({ RequestItems: { [table]: requests } }));
      requests = (result.UnprocessedItems?.[table] ?? []) as typeof requests;
    }
  });
}

/** A completed full listing (a reconciliation) that started at `startedAt`: the next run is incremental. */
export async function seedCompletedFullRun(
  state: StateStore,
  settings: Pick<EngineSettings, 'resourceTypes' | 'deliveryTypes' | 'listingApi'>,
  startedAt: Date,
  listed: number,
): Promise<RunRecord> {
  const at = startedAt.toISOString();
  const run: RunRecord = {
    runId: newRunId(startedAt),
    phase: 'completed',
    listings: {},
    counters: { ...emptyCounters(), listed },
    startedAt: at,
    updatedAt: at,
    finishedAt: at,
    coverage: { kind: 'full', lastFullAt: at, settingsKey: settingsKeyOf(settings), reason: 'first run' },
  };
  await state.putRun(run);
  return run;
}

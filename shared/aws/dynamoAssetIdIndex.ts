import {
  QueryCommand,
  UpdateItemCommand,
  type AttributeValue,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import type { AssetState } from '../types.js';

type Item = Record<string, AttributeValue>;

/** The global secondary index from `assetId` to the asset's keys (infra/constructs/StateTable.ts). */
export const ASSET_ID_INDEX = 'byAssetId';

/** What the asset_id lookups need of the state store. */
export interface AssetIdIndexAccess {
  dynamo: DynamoDBClient;
  table: string;
  send<T>(call: () => Promise<T>): Promise<T>;
  conditional(write: () => Promise<unknown>): Promise<boolean>;
  getMany(ids: string[]): Promise<Map<string, AssetState>>;
  /** The table key of a state id, and the state id of a key (undefined: not an asset state). */
  keyOf(id: string): Item;
  idOf(key: Item): string | undefined;
}

/** The states recorded with `assetId`: keys from the index, then the states read consistently. */
export async function findByAssetId(access: AssetIdIndexAccess, assetId: string): Promise<AssetState[]> {
  if (!assetId) return [];
  // The index holds keys only (cheap to keep up); the states are then read consistently.
  const ids: string[] = [];
  let start: Item | undefined;
  do {
    const page = await access.send(() =>
      access.dynamo.send(
        new QueryCommand({
          TableName: access.table,
          IndexName: ASSET_ID_INDEX,
          KeyConditionExpression: '#assetId = :assetId',
          ExpressionAttributeNames: { '#assetId': 'assetId' },
          ExpressionAttributeValues: { ':assetId': { S: assetId } },
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      ),
    );
    for (const item of page.Items ?? []) {
      const id = access.idOf(item);
      if (id !== undefined) ids.push(id);
    }
    start = page.LastEvaluatedKey;
  } while (start);
  if (ids.length === 0) return [];
  const states = await access.getMany(ids);
  return [...states.values()].filter((state) => state.assetId === assetId);
}

/** Records `id` renamed to `newId`, only while its state still holds `assetId` and is not renamed. */
export async function markRenamed(
  access: AssetIdIndexAccess,
  id: string,
  assetId: string,
  newId: string,
  at: string,
): Promise<void> {
  await access.conditional(() =>
    access.dynamo.send(
      new UpdateItemCommand({
        TableName: access.table,
        Key: access.keyOf(id),
        UpdateExpression: 'SET #status = :renamed, #renamedTo = :to, #deletedAt = :at',
        ConditionExpression: '#assetId = :assetId AND #status <> :renamed',
        ExpressionAttributeNames: {
          '#status': 'status',
          '#renamedTo': 'renamedTo',
          '#deletedAt': 'deletedAt',
          '#assetId': 'assetId',
        },
        ExpressionAttributeValues: {
          ':renamed': { S: 'renamed' },
          ':to': { S: newId },
          ':at': { S: at },
          ':assetId': { S: assetId },
        },
      }),
    ),
  );
}

import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { CopyCheckpoint } from '../types.js';

type Item = Record<string, AttributeValue>;

/**
 * A copy in progress beside its asset's state: `pk = ASSET#<id>`, `sk = COPY`. It carries no
 * status, so listings of asset states skip it.
 */
export function checkpointKey(id: string): Item {
  return { pk: { S: `ASSET#${id}` }, sk: { S: 'COPY' } };
}

/** Gzipped JSON: 10,000 part ETags and checksums stay well inside DynamoDB's 400 KB item. */
export function checkpointToItem(id: string, checkpoint: CopyCheckpoint): Item {
  return {
    ...checkpointKey(id),
    version: { N: String(checkpoint.version) },
    bytes: { N: String(checkpoint.bytes) },
    checkpoint: { B: gzipSync(JSON.stringify(checkpoint)) },
  };
}

export function checkpointFromItem(item: Item | undefined): CopyCheckpoint | undefined {
  const packed = item?.checkpoint?.B;
  if (!packed) return undefined;
  try {
    return JSON.parse(gunzipSync(packed).toString('utf8')) as CopyCheckpoint;
  } catch {
    // Unreadable: the copy starts over, which is always safe.
    return undefined;
  }
}

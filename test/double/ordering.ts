import type { DoubleAsset } from './types.js';
import { BadRequest } from './errors.js';

export type SortField = 'public_id' | 'created_at' | 'uploaded_at' | 'bytes' | 'asset_id';
export type SortDirection = 'asc' | 'desc';
export type SortOrder = ReadonlyArray<readonly [SortField, SortDirection]>;
export type SortKey = ReadonlyArray<string | number>;

export const SORT_FIELDS: readonly SortField[] = [
  'public_id',
  'created_at',
  'uploaded_at',
  'bytes',
  'asset_id',
];

/** Fields appended to every order so that keys are unique: (resource_type, type, public_id) is. */
const TIE_BREAKERS = ['public_id', 'resource_type', 'type'] as const;

type KeyField = SortField | (typeof TIE_BREAKERS)[number];

function fieldValue(asset: DoubleAsset, field: KeyField): string | number {
  switch (field) {
    case 'created_at':
      return Date.parse(asset.created_at);
    case 'uploaded_at':
      return Date.parse(asset.uploaded_at);
    case 'bytes':
      return asset.bytes;
    default:
      return asset[field];
  }
}

/** The full order: the asked fields, then tie-breakers, each with its direction. */
export function completeOrder(order: SortOrder): Array<readonly [KeyField, SortDirection]> {
  const full: Array<readonly [KeyField, SortDirection]> = [...order];
  for (const field of TIE_BREAKERS) {
    if (!full.some(([f]) => f === field)) full.push([field, 'asc']);
  }
  return full;
}

export function orderId(order: SortOrder): string {
  return order.map(([field, direction]) => `${field}:${direction}`).join(',');
}

export function sortKeyOf(asset: DoubleAsset, order: SortOrder): SortKey {
  return completeOrder(order).map(([field]) => fieldValue(asset, field));
}

const signsCache = new WeakMap<SortOrder, number[]>();

function signsOf(order: SortOrder): number[] {
  let signs = signsCache.get(order);
  if (signs === undefined) {
    signs = completeOrder(order).map(([, direction]) => (direction === 'desc' ? -1 : 1));
    signsCache.set(order, signs);
  }
  return signs;
}

/** Negative when `a` comes first in `order`. Strings compare by UTF-16 code units, like a byte-wise index would. */
export function compareKeys(a: SortKey, b: SortKey, order: SortOrder): number {
  const signs = signsOf(order);
  for (let i = 0; i < signs.length; i += 1) {
    const x = a[i];
    const y = b[i];
    if (x === y || x === undefined || y === undefined) continue;
    return (x < y ? -1 : 1) * (signs[i] ?? 1);
  }
  return 0;
}

/** An index over some assets in one order, with their keys for binary search. */
export interface OrderedAssets {
  readonly order: SortOrder;
  readonly assets: readonly DoubleAsset[];
  readonly keys: readonly SortKey[];
}

export function orderAssets(assets: Iterable<DoubleAsset>, order: SortOrder): OrderedAssets {
  const entries = [...assets].map((asset) => ({ asset, key: sortKeyOf(asset, order) }));
  entries.sort((a, b) => compareKeys(a.key, b.key, order));
  return { order, assets: entries.map((e) => e.asset), keys: entries.map((e) => e.key) };
}

/** The entries `keep` accepts, order and keys preserved. */
export function filterOrdered(index: OrderedAssets, keep: (asset: DoubleAsset) => boolean): OrderedAssets {
  const assets: DoubleAsset[] = [];
  const keys: SortKey[] = [];
  index.assets.forEach((asset, i) => {
    const key = index.keys[i];
    if (key !== undefined && keep(asset)) {
      assets.push(asset);
      keys.push(key);
    }
  });
  return { order: index.order, assets, keys };
}

/** Index of the first entry strictly after `key`. */
export function indexAfter(index: OrderedAssets, key: SortKey): number {
  let low = 0;
  let high = index.keys.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (compareKeys(index.keys[mid] ?? [], key, index.order) <= 0) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** Index of the first entry for which `isBefore` is false (`isBefore` must hold for a prefix of the index). */
export function firstIndexWhere(index: OrderedAssets, isBefore: (asset: DoubleAsset) => boolean): number {
  let low = 0;
  let high = index.assets.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    const asset = index.assets[mid];
    if (asset !== undefined && isBefore(asset)) low = mid + 1;
    else high = mid;
  }
  return low;
}

interface CursorPayload {
  o: string;
  k: SortKey;
}

/** Opaque cursor: the last returned sort key, so paging survives additions and deletions. */
export function encodeCursor(order: SortOrder, key: SortKey): string {
  const payload: CursorPayload = { o: orderId(order), k: key };
  return Buffer.from(JSON.stringify(payload), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string, order: SortOrder): SortKey {
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new BadRequest('Invalid next_cursor');
  }
  if (
    typeof payload !== 'object' ||
    payload === null ||
    (payload as CursorPayload).o !== orderId(order) ||
    !Array.isArray((payload as CursorPayload).k)
  ) {
    throw new BadRequest('Invalid next_cursor (it belongs to another query)');
  }
  return (payload as CursorPayload).k;
}

export interface Page {
  assets: DoubleAsset[];
  nextCursor: string | undefined;
}

/**
 * One page from `start`: skips assets `match` rejects, stops at the first asset `stop` accepts.
 * The cursor is the key of the last returned asset when more matching assets follow.
 */
export function takePage(
  index: OrderedAssets,
  start: number,
  maxResults: number,
  match: (asset: DoubleAsset) => boolean = () => true,
  stop: (asset: DoubleAsset) => boolean = () => false,
): Page {
  const assets: DoubleAsset[] = [];
  let lastKey: SortKey | undefined;
  for (let i = start; i < index.assets.length; i += 1) {
    const asset = index.assets[i];
    if (asset === undefined || stop(asset)) break;
    if (!match(asset)) continue;
    if (assets.length === maxResults) {
      return { assets, nextCursor: lastKey === undefined ? undefined : encodeCursor(index.order, lastKey) };
    }
    assets.push(asset);
    lastKey = index.keys[i];
  }
  return { assets, nextCursor: undefined };
}

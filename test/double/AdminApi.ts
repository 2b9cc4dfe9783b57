import { BadRequest, NotFound } from './errors.js';
import type { Library } from './Library.js';
import { RESOURCE_TYPES } from './Library.js';
import {
  decodeCursor,
  filterOrdered,
  firstIndexWhere,
  indexAfter,
  orderId,
  SORT_FIELDS,
  takePage,
} from './ordering.js';
import type { OrderedAssets, SortDirection, SortField, SortOrder } from './ordering.js';
import { detailsItem, listItem, searchItem, searchItemNeedsEtag } from './render.js';
import type { DeliveryBase } from './render.js';
import { compileExpression } from './searchExpression.js';
import type { DoubleAsset, ResourceType } from './types.js';

export const MAX_RESULTS_CEILING = 500;
const LIST_DEFAULT_RESULTS = 10;
const SEARCH_DEFAULT_RESULTS = 50;
const SEARCH_CACHE_ENTRIES = 16;

type Json = Record<string, unknown>;

export function parseResourceType(value: string | undefined): ResourceType {
  if (value === undefined || !(RESOURCE_TYPES as readonly string[]).includes(value)) {
    throw new NotFound(`Unknown resource type ${value ?? ''}`);
  }
  return value as ResourceType;
}

function parseMaxResults(value: unknown, fallback: number): number {
  if (value === undefined || value === null || value === '') return fallback;
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_RESULTS_CEILING) {
    throw new BadRequest(
      `max_results must be an integer between 1 and ${MAX_RESULTS_CEILING} (got ${String(value)})`,
    );
  }
  return n;
}

function isTrue(value: string | null): boolean {
  return value === 'true' || value === '1';
}

function listOf(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  const items = Array.isArray(value) ? value : [value];
  return items
    .flatMap((item) => String(item).split(','))
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** The Admin API's answers, transport aside: each method returns the JSON body or throws a DoubleHttpError. */
export class AdminApi {
  #searchCache = new Map<string, OrderedAssets>();

  /**
   * Search is eventually consistent (CLOUDINARY.md, "Search" and "Incremental listing": seconds):
   * an asset uploaded or changed less than this long ago is not in Search's answers yet.
   */
  searchLagMs = 0;

  constructor(
    private readonly library: Library,
    private readonly base: DeliveryBase,
    private readonly now: () => Date,
  ) {}

  /** `GET /resources/<rt>[/<type>]` */
  list(resourceType: ResourceType, type: string | undefined, query: URLSearchParams): Json {
    const maxResults = parseMaxResults(query.get('max_results'), LIST_DEFAULT_RESULTS);
    const prefix = query.get('prefix') ?? '';
    const startAtText = query.get('start_at');
    const direction = (query.get('direction') ?? 'desc').toLowerCase();
    if (!['asc', 'desc', '1', '-1'].includes(direction))
      throw new BadRequest(`Invalid direction ${direction}`);
    if (prefix !== '' && startAtText !== null)
      throw new BadRequest('start_at cannot be combined with prefix');
    const startAt = startAtText === null ? undefined : Date.parse(startAtText);
    if (startAt !== undefined && Number.isNaN(startAt))
      throw new BadRequest(`Invalid start_at ${startAtText}`);

    const publicIds = query.getAll('public_ids[]').concat(query.getAll('public_ids'));
    const extras = {
      tags: isTrue(query.get('tags')),
      context: isTrue(query.get('context')),
      metadata: isTrue(query.get('metadata')),
    };
    const fields = query.has('fields') ? listOf(query.getAll('fields')) : undefined;
    if (publicIds.length > 0) {
      // resources_by_ids shares this path.
      const found = publicIds
        .map((id) => this.library.get(resourceType, type ?? 'upload', id))
        .filter((asset) => asset !== undefined);
      return { resources: found.map((asset) => listItem(this.base, asset, extras, fields)) };
    }

    // With a prefix the order is by public_id (direction ignored); otherwise by created_at.
    const ascending = direction === 'asc' || direction === '1';
    const order: SortOrder =
      prefix !== '' ? [['public_id', 'asc']] : [['created_at', ascending ? 'asc' : 'desc']];
    const index = this.library.ordered({ resourceType, ...(type !== undefined && { type }) }, order);
    const cursor = query.get('next_cursor');
    let start = cursor ? indexAfter(index, decodeCursor(cursor, order)) : 0;
    let stop = (_asset: DoubleAsset): boolean => false;
    if (prefix !== '') {
      start = Math.max(
        start,
        firstIndexWhere(index, (asset) => asset.public_id < prefix),
      );
      stop = (asset) => !asset.public_id.startsWith(prefix);
    } else if (startAt !== undefined) {
      // start_at lists what was created at or after it, in either direction (unconfirmed for desc).
      const created = (asset: DoubleAsset): number => Date.parse(asset.created_at);
      if (ascending)
        start = Math.max(
          start,
          firstIndexWhere(index, (asset) => created(asset) < startAt),
        );
      else stop = (asset) => created(asset) < startAt;
    }
    const page = takePage(index, start, maxResults, undefined, stop);
    return {
      resources: page.assets.map((asset) => listItem(this.base, asset, extras, fields)),
      ...(page.nextCursor !== undefined && { next_cursor: page.nextCursor }),
    };
  }

  /** `GET /resources/<rt>/<type>/<public_id>` */
  async details(
    resourceType: ResourceType,
    type: string,
    publicId: string,
    query: URLSearchParams,
  ): Promise<Json> {
    const asset = this.library.get(resourceType, type, publicId);
    if (asset === undefined) throw new NotFound(`Resource not found - ${publicId}`);
    const etag = await this.library.md5Of(asset);
    return detailsItem(this.base, asset, etag, isTrue(query.get('versions')));
  }

  /** `POST /resources/search` (JSON body) */
  /**
   * Admin API "Delete resources": `DELETE /resources/<rt>/<type>` with up to 100 `public_ids[]`; each id
   * answers `deleted` or `not_found` (Admin API reference, delete_resources).
   */
  deleteResources(resourceType: ResourceType, type: string, ids: string[]): Json {
    if (ids.length === 0) throw new BadRequest('Missing required parameter - public_ids');
    if (ids.length > 100) throw new BadRequest('Too many public_ids: at most 100 per call');
    const deleted: Record<string, string> = {};
    const counts: Record<string, { original: number; derived: number }> = {};
    for (const id of ids) {
      const found = this.library.get(resourceType, type, id) !== undefined;
      if (found) this.library.delete(resourceType, type, id);
      deleted[id] = found ? 'deleted' : 'not_found';
      counts[id] = { original: found ? 1 : 0, derived: 0 };
    }
    return { deleted, deleted_counts: counts, partial: false };
  }

  async search(body: Json): Promise<Json> {
    const started = performance.now();
    const maxResults = parseMaxResults(body.max_results, SEARCH_DEFAULT_RESULTS);
    const order = this.#searchOrder(body.sort_by);
    const expression = body.expression === undefined ? undefined : String(body.expression);
    const matches = this.#matches(expression, order);
    const cursor =
      typeof body.next_cursor === 'string' && body.next_cursor !== '' ? body.next_cursor : undefined;
    const start = cursor ? indexAfter(matches, decodeCursor(cursor, order)) : 0;
    const page = takePage(matches, start, maxResults);
    const withFields = listOf(body.with_field);
    const fields = body.fields === undefined ? undefined : listOf(body.fields);
    const needsEtag = searchItemNeedsEtag(fields);
    const etags = await Promise.all(
      page.assets.map((asset) => (needsEtag ? this.library.md5Of(asset) : Promise.resolve(undefined))),
    );
    return {
      total_count: matches.assets.length,
      time: Math.round(performance.now() - started),
      resources: page.assets.map((asset, i) => searchItem(this.base, asset, etags[i], withFields, fields)),
      ...(page.nextCursor !== undefined && { next_cursor: page.nextCursor }),
    };
  }

  #searchOrder(sortBy: unknown): SortOrder {
    if (sortBy === undefined || sortBy === null) return [['created_at', 'desc']];
    if (!Array.isArray(sortBy)) throw new BadRequest('sort_by must be an array of {field: direction}');
    const order: Array<readonly [SortField, SortDirection]> = [];
    for (const entry of sortBy) {
      for (const [field, direction] of Object.entries((entry ?? {}) as Record<string, unknown>)) {
        if (!(SORT_FIELDS as readonly string[]).includes(field)) {
          throw new BadRequest(`The double cannot sort by ${field}`);
        }
        if (direction !== 'asc' && direction !== 'desc')
          throw new BadRequest(`Invalid sort direction ${String(direction)}`);
        order.push([field as SortField, direction]);
      }
    }
    return order.length > 0 ? order : [['created_at', 'desc']];
  }

  /** Every match in order; cached per (library generation, clock second, expression, order). */
  #matches(expression: string | undefined, order: SortOrder): OrderedAssets {
    const nowMs = this.now().getTime();
    const cacheKey = `${this.library.generation}\0${Math.floor(nowMs / 1000)}\0${orderId(order)}\0${expression ?? ''}`;
    const cached = this.#searchCache.get(cacheKey);
    if (cached !== undefined) return cached;
    const matching = compileExpression(expression, new Date(nowMs));
    const indexedBefore = nowMs - this.searchLagMs;
    const predicate =
      this.searchLagMs > 0
        ? (asset: DoubleAsset) => Date.parse(asset.updated_at) <= indexedBefore && matching(asset)
        : matching;
    const matches = filterOrdered(this.library.ordered({}, order), predicate);
    if (this.#searchCache.size >= SEARCH_CACHE_ENTRIES) this.#searchCache.clear();
    this.#searchCache.set(cacheKey, matches);
    return matches;
  }
}

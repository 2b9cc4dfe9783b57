import type { ListingApi } from '../config.js';
import { ReplicatorError } from '../errors.js';
import type { ListingCapabilities } from '../types.js';

/** What the listing asks Search for; `metadata` needs Search Tier 2 on some plans (CLOUDINARY.md, "Search tiers"). */
export const SEARCH_WITH_FIELDS = ['tags', 'context', 'metadata'] as const;

/** An account may be upgraded (Tier 2, Search enabled): what was learned is asked again after this long. */
export const CAPABILITIES_TTL_MS = 7 * 24 * 3_600_000;

/**
 * Search answered a 4xx other than 401/420/429: either a `with_field` value the account's tier does
 * not have, or no Search at all. Whether it is one or the other is read from the message.
 * Never leaves CloudinarySource: it turns into a fallback there.
 */
export class SearchRefusedError extends ReplicatorError {
  constructor(
    readonly status: number,
    readonly detail: string,
  ) {
    super(`Cloudinary's Search refused the request (HTTP ${status}: ${detail})`, 'fatal');
  }
}

/** The capabilities an account starts with, before Cloudinary has said otherwise. */
export function initialCapabilities(api: ListingApi, now: Date): ListingCapabilities {
  return { api, refusedFields: [], learnedAt: now.toISOString() };
}

/**
 * The `with_field` values a refusal names. Cloudinary's wording is not documented (CLOUDINARY.md,
 * "Search tiers"), so both are read: a message naming a field we sent, or one that only speaks of
 * a tier or a plan (then the Tier 2 value we sent, `metadata`). Empty: the refusal is about Search itself.
 */
export function refusedFieldsOf(refusal: SearchRefusedError, sent: readonly string[]): string[] {
  const message = refusal.detail.toLowerCase();
  const named = sent.filter((field) => new RegExp(`(^|[^a-z_])${field}([^a-z_]|$)`, 'u').test(message));
  if (named.length > 0 && /with_field|tier|plan|field|not (allowed|supported|available)/u.test(message)) {
    return named;
  }
  if (
    /tier|advanced plan|upgrade/u.test(message) &&
    !/search (api )?is not (enabled|available)/u.test(message)
  ) {
    return sent.includes('metadata') ? ['metadata'] : [];
  }
  return [];
}

/** Listing cursors name the API that made them: a Search cursor cannot continue a resources walk. */
export function encodeCursor(api: ListingApi, cursor: string | undefined): string | undefined {
  return cursor ? `${api}:${cursor}` : undefined;
}

/** Reads a stored cursor; one stored before cursors were tagged belongs to the configured API. */
export function decodeCursor(
  cursor: string | undefined,
  configured: ListingApi,
): { api: ListingApi; cursor: string | undefined } {
  if (!cursor) return { api: configured, cursor: undefined };
  for (const api of ['search', 'resources'] as const) {
    if (cursor.startsWith(`${api}:`)) return { api, cursor: cursor.slice(api.length + 1) };
  }
  return { api: configured, cursor };
}

/** Lines for the run's output: what this account's listing could not give, and what that means. */
export function unavailableNotes(capabilities: ListingCapabilities | undefined): string[] {
  if (!capabilities) return [];
  const notes: string[] = [];
  const why = capabilities.reason ? ` (${capabilities.reason})` : '';
  if (capabilities.api === 'resources' && capabilities.searchUnavailable) {
    notes.push(
      `Cloudinary's Search API is not available for this account${why}: listing with the resources ` +
        'listing instead, which gives no MD5 (etag), so copies are verified by size only until a run with Search.',
    );
  } else if (capabilities.api === 'resources') {
    notes.push(
      'LISTING_API=resources: the resources listing gives no MD5 (etag), so copies are verified by size only; ' +
        'a corrupted download of the right size cannot be detected (use the default Search listing to check MD5s).',
    );
  }
  if (capabilities.refusedFields.length > 0) {
    notes.push(
      `Cloudinary's Search refused with_field ${capabilities.refusedFields.join(', ')}${why}: ` +
        `${capabilities.refusedFields.join(', ')} is not in the manifest (marked unavailable there). ` +
        'Structured metadata through Search needs Search Tier 2; LISTING_API=resources lists it, without MD5 checks.',
    );
  }
  return notes;
}

/** Whether two capability records say the same thing (the date aside). */
export function sameCapabilities(
  a: ListingCapabilities | undefined,
  b: ListingCapabilities | undefined,
): boolean {
  if (!a || !b) return a === b;
  return (
    a.api === b.api &&
    Boolean(a.searchUnavailable) === Boolean(b.searchUnavailable) &&
    [...a.refusedFields].sort().join(',') === [...b.refusedFields].sort().join(',')
  );
}

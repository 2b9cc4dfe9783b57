import type { Listing } from '../types.js';

/**
 * The change times a change listing compares with, in the two readings the docs allow: the parts of
 * `last_updated` that results carry (CLOUDINARY.md, "Incremental listing": tags, context, metadata,
 * public id), or `last_updated` itself as one date field. Either way `uploaded_at` catches uploads
 * and overwrites.
 */
export const CHANGE_TIME_READINGS: readonly (readonly string[])[] = [
  [
    'uploaded_at',
    'last_updated.updated_at',
    'last_updated.tags_updated_at',
    'last_updated.context_updated_at',
    'last_updated.metadata_updated_at',
    'last_updated.public_id_updated_at',
  ],
  ['uploaded_at', 'last_updated'],
];

/** A Search expression for the assets of `listings` uploaded or changed at or after `since`. */
export function changesExpression(listings: Listing[], since: string, fields: readonly string[]): string {
  const any = (terms: string[]) => (terms.length === 1 ? (terms[0] ?? '') : `(${terms.join(' OR ')})`);
  const at = JSON.stringify(new Date(since).toISOString().replace(/\.\d{3}Z$/u, 'Z'));
  return [
    any([...new Set(listings.map((l) => `resource_type:${l.resourceType}`))]),
    any([...new Set(listings.map((l) => `type:${l.deliveryType}`))]),
    any(fields.map((field) => `${field}>=${at}`)),
  ].join(' AND ');
}

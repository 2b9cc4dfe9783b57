import { BadRequest, Forbidden } from './errors.js';
import type { SearchMode } from './types.js';

/**
 * Search as each tier answers it. Tiers per /work/shared/CLOUDINARY.md ("Search tiers"); the
 * refusal shapes are the double's assumptions (documented on SearchMode in types.ts), since
 * Cloudinary's docs do not say what a Tier 1 or a Search-less account gets.
 */
export const SEARCH_MODES: readonly SearchMode[] = ['tier2', 'tier1', 'tier1-silent', 'none'];
/** `with_field` values the double treats as Tier 2 (assumption: see SearchMode). */
export const TIER2_WITH_FIELDS = [
  'metadata',
  'image_metadata',
  'image_analysis',
  'quality_analysis',
  'accessibility_analysis',
];

/** The search body as the account's tier lets it through, or the refusal (see SearchMode). */
export function searchAsTiered(body: Record<string, unknown>, mode: SearchMode): Record<string, unknown> {
  if (mode === 'none') {
    throw new Forbidden('Search API is not enabled for this account. Contact support to enable it.');
  }
  if (mode === 'tier2') return body;
  const asked = body.with_field === undefined ? [] : [body.with_field].flat().map(String);
  const tier2 = asked.filter((field) => TIER2_WITH_FIELDS.includes(field));
  if (tier2.length === 0) return body;
  if (mode === 'tier1') {
    throw new BadRequest(`with_field ${tier2[0]} requires Search Tier 2 (Advanced plans and up)`);
  }
  return { ...body, with_field: asked.filter((field) => !tier2.includes(field)) };
}

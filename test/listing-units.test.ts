import { describe, expect, it } from 'vitest';
import { adminBackoffMs } from '../shared/cloudinary/adminRetry.js';
import {
  decodeCursor,
  encodeCursor,
  refusedFieldsOf,
  SearchRefusedError,
  unavailableNotes,
} from '../shared/cloudinary/listingCapabilities.js';
import { DEFAULT_SETTINGS, reserveFor, settingsFromEnv } from '../shared/config.js';
import { etagCheckOf, needsTransfer } from '../shared/engine/decide.js';
import type { AssetState } from '../shared/types.js';
import { assetState, sourceAsset } from './support/assetFactories.js';

const SENT = ['tags', 'context', 'metadata'];
const refused = (status: number, message: string) =>
  refusedFieldsOf(new SearchRefusedError(status, message), SENT);

describe('reading a Search refusal (the wording is undocumented: both readings)', () => {
  it('a refusal naming a field we asked for drops that field', () => {
    expect(refused(400, 'with_field metadata requires Search Tier 2 (Advanced plans and up)')).toEqual([
      'metadata',
    ]);
    expect(refused(400, "Field 'metadata' is not allowed for your plan")).toEqual(['metadata']);
    expect(refused(403, 'with_field context, metadata: not available on this tier')).toEqual([
      'context',
      'metadata',
    ]);
  });

  it('a refusal that speaks only of the tier drops the Tier 2 field', () => {
    expect(refused(400, 'This feature requires Search API Tier 2. Please upgrade.')).toEqual(['metadata']);
  });

  it('a refusal of Search itself drops no field (the listing falls back to the resources listing)', () => {
    expect(refused(403, 'Search API is not enabled for this account. Contact support to enable it.')).toEqual(
      [],
    );
    expect(refused(404, 'Unknown Admin API route')).toEqual([]);
    expect(refused(400, 'Search is not available for accounts with more than 10 million assets')).toEqual([]);
  });
});

describe('listing cursors', () => {
  it('name the API that made them, so a Search cursor never continues a resources walk', () => {
    expect(decodeCursor(encodeCursor('search', 'abc:def'), 'resources')).toEqual({
      api: 'search',
      cursor: 'abc:def',
    });
    expect(decodeCursor(encodeCursor('resources', 'xyz'), 'search')).toEqual({
      api: 'resources',
      cursor: 'xyz',
    });
    expect(encodeCursor('search', undefined)).toBeUndefined();
  });

  it('a cursor checkpointed before cursors were named belongs to the configured listing', () => {
    expect(decodeCursor('b64cursor==', 'resources')).toEqual({ api: 'resources', cursor: 'b64cursor==' });
    expect(decodeCursor(undefined, 'search')).toEqual({ api: 'search', cursor: undefined });
  });
});

describe('what the run says was unavailable', () => {
  it('nothing on an account with every tier; one line per missing capability otherwise', () => {
    const at = '2026-01-01T00:00:00.000Z';
    expect(unavailableNotes({ api: 'search', refusedFields: [], learnedAt: at })).toEqual([]);
    expect(
      unavailableNotes({
        api: 'search',
        refusedFields: ['metadata'],
        reason: 'HTTP 400: Tier 2',
        learnedAt: at,
      }),
    ).toEqual([
      expect.stringMatching(/^Cloudinary's Search refused with_field metadata \(HTTP 400: Tier 2\)/u),
    ]);
    expect(unavailableNotes({ api: 'resources', refusedFields: [], learnedAt: at })).toEqual([
      expect.stringMatching(/LISTING_API=resources.*verified by size only.*cannot be detected/u),
    ]);
  });
});

describe('the Admin API reserve', () => {
  it('is a share of the account limit by default, at least one call', () => {
    expect(DEFAULT_SETTINGS.adminReserve).toBe('2%');
    expect(reserveFor('2%', 500)).toBe(10);
    expect(reserveFor('2%', 2_000)).toBe(40);
    expect(reserveFor('2%', 20)).toBe(1);
    expect(reserveFor('2%', 0)).toBe(0);
    expect(reserveFor(7, 20)).toBe(7);
  });

  it('ADMIN_RESERVE takes a number of calls or a share, and names what is wrong', () => {
    expect(settingsFromEnv({}).adminReserve).toBe('2%');
    expect(settingsFromEnv({ ADMIN_RESERVE: '5%' }).adminReserve).toBe('5%');
    expect(settingsFromEnv({ ADMIN_RESERVE: '0.5%' }).adminReserve).toBe('0.5%');
    expect(settingsFromEnv({ ADMIN_RESERVE: '12' }).adminReserve).toBe(12);
    expect(() => settingsFromEnv({ ADMIN_RESERVE: '60%' })).toThrow(/ADMIN_RESERVE .*0% to 50%.*"60%"/u);
    expect(() => settingsFromEnv({ ADMIN_RESERVE: 'lots' })).toThrow(
      /ADMIN_RESERVE must be a number of calls/u,
    );
  });
});

describe('Admin API backoff', () => {
  it('doubles from 1 s to at most 30 s, with jitter in the upper half', () => {
    const policy = { baseMs: 1_000, maxMs: 30_000 };
    expect(adminBackoffMs({ ...policy, random: () => 0 }, 1)).toBe(500);
    expect(adminBackoffMs({ ...policy, random: () => 1 }, 1)).toBe(1_000);
    expect(adminBackoffMs({ ...policy, random: () => 0 }, 3)).toBe(2_000);
    expect(adminBackoffMs({ ...policy, random: () => 1 }, 10)).toBe(30_000);
  });
});

describe('checking copies against an etag', () => {
  const asset = sourceAsset;
  const state = (over: Partial<AssetState> = {}): AssetState => assetState({ md5: 'a'.repeat(32), ...over });

  it('a copy whose MD5 differs from the etag is copied again, even when verified by size', () => {
    const listed = asset({ etag: 'b'.repeat(32) });
    expect(etagCheckOf(listed, state({ verifiedBy: 'size' }))).toBe('mismatch');
    expect(needsTransfer(listed, state({ verifiedBy: 'size' }))).toBe(true);
  });

  it('a size-only copy whose MD5 matches is upgraded without a transfer', () => {
    const listed = asset({ etag: 'a'.repeat(32) });
    expect(etagCheckOf(listed, state({ verifiedBy: 'size' }))).toBe('upgrade');
    expect(needsTransfer(listed, state({ verifiedBy: 'size' }))).toBe(false);
  });

  it('nothing to do without an etag, for an md5-verified match, or for another version', () => {
    expect(etagCheckOf(asset(), state({ verifiedBy: 'size' }))).toBeUndefined();
    expect(etagCheckOf(asset({ etag: 'a'.repeat(32) }), state({ verifiedBy: 'md5' }))).toBeUndefined();
    expect(etagCheckOf(asset({ etag: 'a'.repeat(32) }), state())).toBeUndefined();
    expect(etagCheckOf(asset({ etag: 'b'.repeat(32), version: 11 }), state())).toBeUndefined();
  });
});

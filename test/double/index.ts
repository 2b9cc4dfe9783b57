/**
 * A faithful Cloudinary test double: Admin API (list, details, search, ping, delete_resources), the
 * Upload API, the download API and
 * delivery of originals, on one plain-HTTP port of 127.0.0.1, reached by the real `cloudinary` SDK.
 *
 * Pointing the real SDK at it (verified in test/double-sdk*.test.ts):
 * - The SDK picks http or https once, when first loaded, from `CLOUDINARY_URL`'s `upload_prefix`.
 *   `config({ upload_prefix })` afterwards does NOT switch it. So either
 *   `const cloudinary = await loadSdkFor(double)` (sets `CLOUDINARY_URL`, then a dynamic import), or
 *   `import './double/httpSdk.js'` as the first import of the test file, then
 *   `pointSdkAt(cloudinary, double)`. Each Vitest file runs in its own process (the SDK's choice
 *   does not leak between files).
 * - Per-call `double.sdkOptions` (cloud_name, api_key, api_secret, upload_prefix, secure, cname) reach
 *   the double whatever the global config holds, once the SDK was loaded with http.
 * - `cloudinary.url()` ignores `upload_prefix`: pass `{ secure: false }` (the `cname` from
 *   `cloudinaryUrl` then names the double), or use a listing's `secure_url`.
 *
 * Behaviours chosen where Cloudinary's is unconfirmed or where a test wants a knob:
 * - Delivery with `v<N>`: the current version, or an older version the asset had (its old bytes, as a
 *   CDN cache would); a version the asset never had is a 404 (`unknownVersion: 'current'` serves the
 *   current bytes like Cloudinary's origin). Unversioned URLs serve the current version
 *   (`staleUnversioned: true` pins the first one served, like a stale CDN copy).
 * - 401 on Admin calls (checked first) is neither metered nor given rate-limit headers; 400/404 after
 *   login are metered and carry them.
 *   Injected 5xx and hangs happen before metering. The 420/429 carries the headers unless
 *   `rateLimitHeadersWhenExceeded: false`.
 * - `resources/<rt>` without a type lists every delivery type; `start_at` keeps assets created at or
 *   after it in both directions; an overwrite keeps `created_at` and moves `version`/`uploaded_at`.
 * - The download API and delivery are not metered; the download API checks `expires_at` against the
 *   double's clock but not `timestamp` (the SDK stamps real time, tests often move the clock).
 * - Delivery signatures: SHA-1 (or SHA-256) of `public_id.ext` + secret as the SDK escapes it in the
 *   URL (the decoded form is accepted too), URL-safe base64, 8 chars (32 for long_url_signature).
 *   A bad signature is a 401 even on `upload` assets; `private`/`authenticated` need one.
 * - The double serves originals only: another extension than the stored format is a 404.
 * - Search tiers: `search: 'tier1'` refuses Tier 2 `with_field` values with a 400, `'tier1-silent'`
 *   drops them from the answer, `'none'` refuses every search with a 403 (see SearchMode).
 * - Webhooks: `double.webhooks` holds triggers (`/triggers`) and uploads, overwrites, deletes and renames
 *   that POST signed notifications to them; retries wait for `deliverDue()` on the double's clock.
 * - Upload API (UploadApi.ts): signed multipart uploads, chunked with X-Unique-Upload-Id and
 *   Content-Range, plan and per-request size limits (`uploadLimits`), `overwrite=false` answering the
 *   existing asset unchanged (flagged `existing: true` unless `flagExistingUploads: false`).
 * - Faults: `double.faults.add({ route, publicId?, times?, share?, kind, ... })`, see `FaultEffect`.
 */
export { startCloudinaryDouble } from './startCloudinaryDouble.js';
export { Library } from './Library.js';
export { Webhooks, EVENT_TYPES, RETRY_AFTER_MS } from './Webhooks.js';
export type { Trigger, DeliveryAttempt } from './Webhooks.js';
export { FREE_PLAN_LIMITS } from './UploadApi.js';
export type { Scope } from './Library.js';
export { generateLibrary, DEFAULT_SIZES } from './generateLibrary.js';
export type { GenerateLibrarySpec, LargeAssetSpec, SizeRange } from './generateLibrary.js';
export { AWKWARD_PUBLIC_IDS } from './awkwardIds.js';
export { loadSdkFor, pointSdkAt } from './sdk.js';
export type { CloudinarySdk } from './sdk.js';
export { deliverySignature, sdkEscapedPublicId } from './signatures.js';
export { encodePublicIdPath } from './render.js';
export type {
  ActiveFault,
  AssetSpec,
  CloudinaryDouble,
  ContentRef,
  DoubleAsset,
  DoubleClock,
  DoubleCounters,
  DoubleOptions,
  FaultEffect,
  FaultRoute,
  FaultSpec,
  Faults,
  RateLimitBehaviour,
  RequestKind,
  RequestLogEntry,
  ResourceType,
  SearchMode,
  UploadLimits,
  VersionRecord,
} from './types.js';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AWKWARD_PUBLIC_IDS,
  generateLibrary,
  Library,
  loadSdkFor,
  startCloudinaryDouble,
} from './double/index.js';
import type { CloudinaryDouble, CloudinarySdk, DoubleAsset } from './double/index.js';
import { fetchBytes, md5Hex, rawGet } from './double/testing.js';

const NOW = new Date('2025-08-08T16:30:00Z');

describe('delivery and the download API', () => {
  let double: CloudinaryDouble;
  let cloudinary: CloudinarySdk;
  let plain: DoubleAsset;

  const asset = (
    publicId: string,
    type = 'upload',
    resourceType: DoubleAsset['resource_type'] = 'image',
  ): DoubleAsset => {
    const found = double.library.get(resourceType, type, publicId);
    if (found === undefined) throw new Error(`fixture lacks ${publicId}`);
    return found;
  };

  beforeAll(async () => {
    const library = generateLibrary({
      seed: 'delivery',
      counts: {},
      sizes: { image: [500, 3_000] },
      awkwardIds: true,
    });
    library.add({
      publicId: 'photo/plain',
      resourceType: 'image',
      bytes: 200_000,
      createdAt: new Date('2025-01-01'),
    });
    library.add({
      publicId: 'photo/overwritten',
      resourceType: 'image',
      bytes: 1_000,
      createdAt: new Date('2025-01-02'),
    });
    library.add({ publicId: 'private/one', resourceType: 'image', type: 'private', bytes: 2_000 });
    library.add({
      publicId: 'auth/one',
      resourceType: 'video',
      type: 'authenticated',
      bytes: 3_000,
      format: 'mov',
    });
    library.add({ publicId: 'docs/readme.txt', resourceType: 'raw', bytes: 700 });
    double = await startCloudinaryDouble({ library, now: () => NOW });
    cloudinary = await loadSdkFor(double);
    plain = asset('photo/plain');
  });

  afterAll(async () => {
    await double.close();
  });

  it('serves the versioned original with its length and the bytes the etag describes', async () => {
    const details = (await cloudinary.api.resource(plain.public_id)) as { etag: string };

    const { response, body } = await fetchBytes(double.deliveryUrl(plain));

    expect(response.status).toBe(200);
    expect(response.headers.get('content-length')).toBe('200000');
    expect(response.headers.get('content-type')).toBe('image/jpeg');
    expect(response.headers.get('accept-ranges')).toBe('bytes');
    expect(md5Hex(body)).toBe(details.etag);
  });

  it('answers Range requests with 206 and Content-Range, and 416 past the end', async () => {
    const { body: whole } = await fetchBytes(double.deliveryUrl(plain));
    const url = double.deliveryUrl(plain);

    const middle = await fetchBytes(url, { headers: { range: 'bytes=100-199' } });
    const suffix = await fetchBytes(url, { headers: { range: 'bytes=-50' } });
    const open = await fetchBytes(url, { headers: { range: 'bytes=199990-' } });
    const past = await fetchBytes(url, { headers: { range: 'bytes=200000-' } });

    expect(middle.response.status).toBe(206);
    expect(middle.response.headers.get('content-range')).toBe('bytes 100-199/200000');
    expect(middle.body.equals(whole.subarray(100, 200))).toBe(true);
    expect(suffix.body.equals(whole.subarray(199_950))).toBe(true);
    expect(open.response.headers.get('content-range')).toBe('bytes 199990-199999/200000');
    expect(open.body.equals(whole.subarray(199_990))).toBe(true);
    expect(past.response.status).toBe(416);
    expect(past.response.headers.get('content-range')).toBe('bytes */200000');
    expect(past.response.headers.get('x-cld-error')).toBeTruthy();
  });

  it('serves the unversioned path and HEAD requests', async () => {
    const unversioned = `${double.origin}/double-cloud/image/upload/photo/plain.jpg`;

    const { response, body } = await fetchBytes(unversioned);
    const head = await fetch(double.deliveryUrl(plain), { method: 'HEAD' });

    expect(response.status).toBe(200);
    expect(body.length).toBe(200_000);
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe('200000');
  });

  it('serves an older version its own bytes and answers 404 for a version the asset never had', async () => {
    const old = asset('photo/overwritten');
    const current = double.library.overwrite('image', 'upload', old.public_id, 1_500);

    const oldAnswer = await fetchBytes(double.deliveryUrl(old));
    const newAnswer = await fetchBytes(double.deliveryUrl(current));
    const never = await fetch(double.deliveryUrl(old).replace(`/v${old.version}/`, '/v1/'));
    // url() without a version writes v1 for ids with a folder: the double catches it.
    const sdkDefault = await fetch(cloudinary.url(old.public_id, { secure: false, format: 'jpg' }));

    expect(md5Hex(oldAnswer.body)).toBe(await double.library.md5Of(old));
    expect(md5Hex(newAnswer.body)).toBe(await double.library.md5Of(current));
    expect(newAnswer.body.length).toBe(1_500);
    expect(md5Hex(oldAnswer.body)).not.toBe(md5Hex(newAnswer.body));
    expect(never.status).toBe(404);
    expect(never.headers.get('x-cld-error')).toBeTruthy();
    expect(sdkDefault.status).toBe(404);
  });

  it('can serve unknown versions as current, and pin stale unversioned copies, when asked', async () => {
    const library = new Library('stale');
    const first = library.add({ publicId: 'x/y', resourceType: 'image', bytes: 100 });
    const other = await startCloudinaryDouble({ library, unknownVersion: 'current', staleUnversioned: true });
    try {
      const unversioned = `${other.origin}/double-cloud/image/upload/x/y.jpg`;
      const before = await fetchBytes(unversioned);
      const second = library.overwrite('image', 'upload', 'x/y', 120);

      const after = await fetchBytes(unversioned);
      const anyVersion = await fetchBytes(other.deliveryUrl(second).replace(`/v${second.version}/`, '/v1/'));

      expect(before.body.length).toBe(first.bytes);
      expect(after.body.equals(before.body)).toBe(true);
      expect(anyVersion.body.length).toBe(120);
      expect(md5Hex(anyVersion.body)).toBe(await library.md5Of(second));
    } finally {
      await other.close();
    }
  });

  it('serves private and authenticated originals only with a valid signature', async () => {
    const privateOne = asset('private/one', 'private');
    const authOne = asset('auth/one', 'authenticated', 'video');
    const signed = (target: DoubleAsset): string =>
      cloudinary.url(target.public_id, {
        resource_type: target.resource_type,
        type: target.type,
        sign_url: true,
        secure: false,
        version: target.version,
        format: target.format,
      });

    const unsigned = await fetch(double.deliveryUrl(privateOne));
    const good = await fetchBytes(signed(privateOne));
    const goodAuth = await fetchBytes(signed(authOne));
    const tampered = await fetch(signed(privateOne).replace(/s--[^/]+--/, 's--AAAAAAAA--'));
    const borrowed = /s--[^/]+--/.exec(signed(authOne))?.[0] ?? '';
    const otherIds = await fetch(signed(privateOne).replace(/s--[^/]+--/, borrowed));

    expect(unsigned.status).toBe(401);
    expect(unsigned.headers.get('x-cld-error')).toBe('deny or ACL failure');
    expect(good.response.status).toBe(200);
    expect(good.body.length).toBe(2_000);
    expect(goodAuth.response.status).toBe(200);
    expect(goodAuth.response.headers.get('content-type')).toBe('video/quicktime');
    expect(tampered.status).toBe(401);
    expect(otherIds.status).toBe(401);
  });

  it('decodes each path segment: every awkward id is served from its secure_url when the path is sent as is', async () => {
    const statuses: Array<[string, number, number]> = [];
    for (const id of AWKWARD_PUBLIC_IDS) {
      const target = asset(id);
      const answer = await rawGet(double.deliveryUrl(target));
      statuses.push([id, answer.status, answer.body.length - target.bytes]);
    }

    expect(statuses).toEqual(AWKWARD_PUBLIC_IDS.map((id) => [id, 200, 0]));
  });

  it('is reached through url() for ids the SDK escapes faithfully, but not for every legal id', async () => {
    const viaUrl = async (id: string): Promise<number> => {
      const target = asset(id);
      const built = cloudinary.url(id, {
        secure: false,
        sign_url: true,
        version: target.version,
        format: 'jpg',
      });
      return (await fetch(built)).status;
    };

    expect(await viaUrl('awkward/with space')).toBe(200);
    expect(await viaUrl('awkward/日本語のファイル')).toBe(200);
    expect(await viaUrl('awkward/question?mark')).toBe(200);
    expect(await viaUrl('awkward/hash#tag')).toBe(200);
    // The documented mangling: %20 decoded, // collapsed, dot segments normalised away.
    expect(await viaUrl('awkward/looks%20encoded')).toBe(404);
    expect(await viaUrl('awkward//double-slash')).toBe(404);
    // fetch drops `awkward/..`: the signature no longer matches the path that arrives.
    expect(await viaUrl('awkward/../dot-dot-segment')).toBe(401);
    await expect(viaUrl('awkward/100% literal percent')).rejects.toThrow(/URI malformed/);
  });

  it('reaches every awkward id through the download API, with the bytes of the etag', async () => {
    const digests: Array<[string, number, boolean]> = [];
    for (const id of AWKWARD_PUBLIC_IDS) {
      const target = asset(id);
      const url = cloudinary.utils.private_download_url(id, 'jpg', {
        resource_type: 'image',
        type: 'upload',
      });
      const { response, body } = await fetchBytes(url);
      digests.push([id, response.status, md5Hex(body) === (await double.library.md5Of(target))]);
    }

    expect(digests).toEqual(AWKWARD_PUBLIC_IDS.map((id) => [id, 200, true]));
    expect(double.counters.downloadApiRequests).toBeGreaterThanOrEqual(AWKWARD_PUBLIC_IDS.length);
  });

  it('serves private and raw assets through the download API', async () => {
    const privateUrl = cloudinary.utils.private_download_url('private/one', 'jpg', { type: 'private' });
    const rawUrl = cloudinary.utils.private_download_url('docs/readme.txt', '', { resource_type: 'raw' });

    const privateAnswer = await fetchBytes(privateUrl);
    const rawAnswer = await fetchBytes(rawUrl);

    expect(privateAnswer.body.length).toBe(2_000);
    expect(rawAnswer.response.status).toBe(200);
    expect(rawAnswer.response.headers.get('content-type')).toBe('text/plain');
    expect(rawAnswer.body.length).toBe(700);
  });

  it('refuses a wrong signature, a wrong key and an URL expired by the double clock', async () => {
    const nowSeconds = Math.floor(double.clock.now().getTime() / 1000);
    const valid = cloudinary.utils.private_download_url('photo/plain', 'jpg', {
      expires_at: nowSeconds + 60,
    });
    const signature = new URL(valid).searchParams.get('signature') ?? '';
    const badSignature = valid.replace(
      signature,
      `${signature.slice(0, -1)}${signature.endsWith('0') ? '1' : '0'}`,
    );
    const wrongKey = valid.replace(`api_key=${double.apiKey}`, 'api_key=1');
    const otherId = valid.replace('photo%2Fplain', 'photo%2Foverwritten');

    const okBefore = await fetch(valid);
    const bad = await fetch(badSignature);
    const badKey = await fetch(wrongKey);
    const swapped = await fetch(otherId);
    double.clock.advance(61_000);
    const expired = await fetch(valid);
    double.clock.advance(-61_000);

    expect(okBefore.status).toBe(200);
    expect(bad.status).toBe(401);
    expect(await bad.json()).toEqual({ error: { message: 'Invalid Signature' } });
    expect(badKey.status).toBe(401);
    expect(swapped.status).toBe(401);
    expect(expired.status).toBe(401);
  });

  it('serves raw originals without an added extension, and 404s with X-Cld-Error', async () => {
    const raw = asset('docs/readme.txt', 'upload', 'raw');

    const { response, body } = await fetchBytes(double.deliveryUrl(raw));
    const missing = await fetch(`${double.origin}/double-cloud/image/upload/v1/no/such.jpg`);
    const converted = await fetch(double.deliveryUrl(plain).replace(/\.jpg$/, '.png'));

    expect(double.deliveryUrl(raw)).toMatch(/\/v\d+\/docs\/readme\.txt$/);
    expect(response.headers.get('content-type')).toBe('text/plain');
    expect(body.length).toBe(700);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('x-cld-error')).toBe('Resource not found');
    expect(converted.status).toBe(404);
  });

  it('does not count delivery against the Admin API budget but counts its requests and bytes', async () => {
    const before = { ...double.counters };

    await fetchBytes(double.deliveryUrl(plain), { headers: { range: 'bytes=0-9' } });

    expect(double.counters.adminCalls).toBe(before.adminCalls);
    expect(double.counters.deliveryRequests).toBe(before.deliveryRequests + 1);
    expect(double.counters.deliveryBytes).toBe(before.deliveryBytes + 10);
    expect(double.requestLog.at(-1)).toMatchObject({
      kind: 'delivery',
      status: 206,
      bytes: 10,
      publicId: 'photo/plain',
    });
  });
});

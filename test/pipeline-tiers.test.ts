import { afterEach, describe, expect, it } from 'vitest';
import { replicateMain } from '../shared/cli/replicate.js';
import { S3ObjectStore } from '../shared/aws/S3ObjectStore.js';
import { manifestKey, readManifest, type ManifestEntry } from '../shared/engine/manifest.js';
import { objectKeyFor } from '../shared/keys.js';
import { generateLibrary, type DoubleAsset, type SearchMode } from './double/index.js';
import { captureStreams, TINY_SIZES } from './support/backupBed.js';
import { bucketObjects, createPipelineBed, idOf, statesOf, type PipelineBed } from './support/pipelineBed.js';

let bed: PipelineBed | undefined;
afterEach(async () => {
  await bed?.close();
  bed = undefined;
});

/** The awkward sample library, with one asset carrying tags, context and metadata. */
async function startBed(search: SearchMode, env: Record<string, string> = {}): Promise<PipelineBed> {
  const library = generateLibrary({
    seed: 'pipeline-tiers',
    counts: { image: { upload: 20, private: 3 }, video: { upload: 2 }, raw: { upload: 4, authenticated: 1 } },
    sizes: TINY_SIZES,
    awkwardIds: true,
  });
  library.add({
    publicId: 'described/everything',
    resourceType: 'image',
    format: 'jpg',
    bytes: 4_000,
    tags: ['kept', 'tagged'],
    context: { alt: 'an alt text', caption: 'a caption' },
    metadata: { rating: 5 },
  });
  bed = await createPipelineBed({ library, search }, env);
  return bed;
}

function keyOf(asset: DoubleAsset): string {
  return objectKeyFor({
    resourceType: asset.resource_type,
    deliveryType: asset.type,
    publicId: asset.public_id,
    format: asset.format,
  });
}

/** `npm run replicate` against the bed; the manifest, bucket and states it left. */
async function replicate(current: PipelineBed) {
  const io = captureStreams();
  const code = await replicateMain([], io.streams, process.env);
  const latest = await current.state.latestRun();
  const store = new S3ObjectStore({ s3: current.aws.clients.s3, bucket: current.aws.bucket });
  const manifest = new Map<string, ManifestEntry>();
  for await (const entry of readManifest(store, manifestKey(latest?.runId ?? '')))
    manifest.set(entry.id, entry);
  const assets = current.double.library.all();
  return {
    code,
    output: io.out(),
    errors: io.err(),
    manifest,
    objects: await bucketObjects(current),
    states: await statesOf(current, assets),
    assets,
  };
}

describe('npm run replicate on every Cloudinary plan', { timeout: 300_000 }, () => {
  const cases: Array<{
    mode: SearchMode;
    unavailable: unknown[];
    verifiedBy: 'md5' | 'size';
    metadata: boolean;
  }> = [
    { mode: 'tier2', unavailable: [], verifiedBy: 'md5', metadata: true },
    {
      mode: 'tier1',
      unavailable: [expect.stringMatching(/Search refused with_field metadata \(HTTP 400/u)],
      verifiedBy: 'md5',
      metadata: false,
    },
    {
      mode: 'none',
      unavailable: [expect.stringMatching(/Search API is not available for this account \(HTTP 403/u)],
      verifiedBy: 'size',
      metadata: true,
    },
  ];
  for (const { mode, unavailable, verifiedBy, metadata } of cases) {
    it(`with Search ${mode} copies every asset of the awkward library, with tags and context in the manifest${
      unavailable.length ? ', and says what was unavailable' : ''
    }`, async () => {
      const current = await startBed(mode);

      const run = await replicate(current);

      expect(run.errors).toBe('');
      expect(run.code).toBe(0);
      expect(run.objects.size).toBe(run.assets.length);
      for (const asset of run.assets) {
        const md5 = await current.double.library.md5Of(asset);
        expect(run.objects.get(keyOf(asset))?.etag, asset.public_id).toBe(md5);
        expect(run.states.get(idOf(asset))?.status, asset.public_id).toBe('replicated');
        expect(run.states.get(idOf(asset))?.verifiedBy, asset.public_id).toBe(verifiedBy);
      }
      expect(run.manifest.size).toBe(run.assets.length);
      const described = current.double.library.get('image', 'upload', 'described/everything') as DoubleAsset;
      const entry = run.manifest.get(idOf(described));
      expect(entry).toMatchObject({
        tags: ['kept', 'tagged'],
        context: { alt: 'an alt text', caption: 'a caption' },
      });
      expect(entry?.metadata).toEqual(metadata ? { rating: 5 } : undefined);
      const lines = run.output.split('\n').filter((line) => line.startsWith('Unavailable: '));
      expect(lines).toEqual(unavailable);
    });
  }
});

describe('npm run replicate when the Admin API stays down', { timeout: 300_000 }, () => {
  it('stops with a message saying so, and the next run continues the same run from its checkpoint', async () => {
    // One try per call: this test is about the run stopping, not about the backoff.
    const current = await startBed('tier2', { ADMIN_RETRIES: '1' });
    current.double.faults.add({ route: 'search', kind: 'status', status: 503 });
    const down = captureStreams();

    const downCode = await replicateMain([], down.streams, process.env);
    const stopped = await current.state.latestRun();
    current.double.faults.clear();
    const run = await replicate(current);

    expect(downCode).toBe(1);
    expect(down.err()).toMatch(
      /Cloudinary's Admin API kept failing \(one try\); last error: .*503.*continues from its checkpoint/u,
    );
    expect(stopped?.phase).toBe('waiting');
    expect(run.code).toBe(0);
    expect((await current.state.latestRun())?.runId).toBe(stopped?.runId);
    expect(run.objects.size).toBe(run.assets.length);
    expect([...run.states.values()].every((s) => s.status === 'replicated')).toBe(true);
  });
});

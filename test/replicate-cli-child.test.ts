import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateLibrary } from './double/index.js';
import { mimeTypeOf } from './double/transport.js';
import { keyOf } from './support/backupBed.js';
import { runCommand } from './support/cliChild.js';
import { createPipelineBed, type PipelineBed } from './support/pipelineBed.js';

describe('npm run replicate as a process', { timeout: 180_000 }, () => {
  let bed: PipelineBed;

  beforeAll(async () => {
    bed = await createPipelineBed(
      {
        library: generateLibrary({
          seed: 'replicate-child',
          counts: { image: { upload: 6 }, video: { upload: 2 }, raw: { upload: 2 } },
          sizes: { image: [2_000, 9_000], video: [20_000, 40_000], raw: [300, 900] },
        }),
      },
      { DELIVERY_TYPES: 'upload' },
    );
  });
  afterAll(async () => bed?.close());

  it('counts the bytes it copies in its progress, and stores each asset with the media type of its format', async () => {
    const assets = bed.double.library.all();
    const total = assets.reduce((sum, asset) => sum + asset.bytes, 0);

    const run = await runCommand('shared/cli/replicate.ts', ['--json'], process.env);

    const events = run.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { event: string; bytes?: number; rate?: number });
    const progress = events.filter((e) => e.event === 'progress').at(-1);
    expect(run.code, run.stderr).toBe(0);
    expect(progress?.bytes).toBe(total);
    const stored = new Map<string, string | undefined>();
    const served = new Map<string, string>();
    for (const asset of assets) {
      const head = await bed.aws.clients.s3.send(
        new HeadObjectCommand({ Bucket: bed.aws.bucket, Key: keyOf(asset) }),
      );
      stored.set(keyOf(asset), head.ContentType);
      // The type Cloudinary's delivery serves the file with (the double's own table).
      served.set(keyOf(asset), mimeTypeOf(asset.resource_type === 'raw' ? asset.public_id : asset.format));
    }
    expect(stored).toEqual(served);
    expect([...stored.values()]).toContain('image/jpeg');
  });
});

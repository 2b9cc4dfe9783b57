import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replicateMain } from '../shared/cli/replicate.js';
import { pullMain } from '../shared/cli/pull.js';
import { restoreMain } from '../shared/cli/restore.js';
import type { RestoreSummary } from '../shared/restore/types.js';
import { generateLibrary } from './double/index.js';
import { captureStreams, freshFolder, removeFolders, waitUntil } from './support/backupBed.js';
import { createPipelineBed, type PipelineBed } from './support/pipelineBed.js';

function summaryOf(out: string): RestoreSummary {
  return JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as RestoreSummary;
}

function idOf(asset: { resource_type: string; type: string; public_id: string }): string {
  return `${asset.resource_type}/${asset.type}/${asset.public_id}`;
}

describe('npm run restore from the backup bucket', { timeout: 180_000 }, () => {
  let bed: PipelineBed;
  let journalDir: string;
  const md5s = new Map<string, string>();

  beforeAll(async () => {
    bed = await createPipelineBed({
      library: generateLibrary({
        seed: 'restore-bucket',
        counts: { image: { upload: 10, private: 2, authenticated: 1 }, raw: { upload: 3 } },
        sizes: { image: [1000, 20_000], raw: [100, 900] },
        awkwardIds: 6,
      }),
    });
    journalDir = freshFolder('restore-bucket');
    const code = await replicateMain([], captureStreams().streams);
    if (code !== 0) throw new Error(`the backup into the bucket failed (${code})`);
    for (const asset of bed.double.library.all())
      md5s.set(idOf(asset), await bed.double.library.md5Of(asset));
  });
  afterAll(async () => {
    await bed?.close();
    await removeFolders();
  });

  it('puts every asset back from the bucket after all were deleted, each verified', async () => {
    const { library } = bed.double;
    for (const asset of library.all()) library.delete(asset.resource_type, asset.type, asset.public_id);
    const { streams, out, err } = captureStreams();

    const code = await restoreMain(
      ['--bucket', bed.aws.bucket, '--journal', join(journalDir, 'all.jsonl'), '--json'],
      streams,
      process.env,
    );

    expect(code, err()).toBe(0);
    expect(summaryOf(out())).toMatchObject({ restored: md5s.size, failed: [], refused: [], skipped: [] });
    for (const asset of library.all())
      expect(await library.md5Of(asset), asset.public_id).toBe(md5s.get(idOf(asset)));
    expect(library.size).toBe(md5s.size);
  });

  it('--as-of brings back the version the bucket held at that date', async () => {
    const { library } = bed.double;
    const target = library.all().find((a) => a.resource_type === 'image' && a.type === 'upload');
    if (!target) throw new Error('no image');
    const original = await library.md5Of(target);
    const asOf = new Date();
    // S3 dates have whole seconds: the next backup must land in a later second than asOf.
    await waitUntil(
      () => Date.now() >= Math.ceil(asOf.getTime() / 1000) * 1000 + 1000,
      5_000,
      'the next second',
    );
    bed.double.clock.advance(10_000);
    library.overwrite('image', 'upload', target.public_id, target.bytes + 17);
    expect(await replicateMain([], captureStreams().streams)).toBe(0);
    const { streams, out, err } = captureStreams();

    const code = await restoreMain(
      [
        '--bucket',
        bed.aws.bucket,
        '--as-of',
        asOf.toISOString(),
        '--public-id',
        target.public_id,
        '--overwrite',
        '--journal',
        join(journalDir, 'as-of.jsonl'),
        '--json',
      ],
      streams,
      process.env,
    );

    expect(code, err()).toBe(0);
    expect(summaryOf(out())).toMatchObject({ selected: 1, restored: 1 });
    const now = library.get('image', 'upload', target.public_id);
    expect(now && (await library.md5Of(now))).toBe(original);
  });

  it('restores from a folder written by npm run pull', async () => {
    const pulled = freshFolder('pulled');
    expect(
      await pullMain(['--bucket', bed.aws.bucket, '--dest', pulled], captureStreams().streams, process.env),
    ).toBe(0);
    const { library } = bed.double;
    const raws = library.all().filter((a) => a.resource_type === 'raw');
    const wanted = await Promise.all(raws.map(async (a) => [idOf(a), await library.md5Of(a)] as const));
    for (const a of raws) library.delete(a.resource_type, a.type, a.public_id);
    const { streams, out, err } = captureStreams();

    const code = await restoreMain(
      ['--from', pulled, '--resource-type', 'raw', '--journal', join(journalDir, 'pulled.jsonl'), '--json'],
      streams,
      process.env,
    );

    expect(code, err()).toBe(0);
    expect(summaryOf(out())).toMatchObject({ selected: raws.length, restored: raws.length, failed: [] });
    for (const [id, md5] of wanted) {
      const [, type, ...rest] = id.split('/');
      const back = library.get('raw', type ?? '', rest.join('/'));
      expect(back && (await library.md5Of(back)), id).toBe(md5);
    }
  });

  it('names an unknown bucket and a missing --as-of backup clearly', async () => {
    const missing = captureStreams();
    expect(
      await restoreMain(
        ['--bucket', 'no-such-bucket-restore', '--journal', join(journalDir, 'x.jsonl')],
        missing.streams,
        process.env,
      ),
    ).toBe(1);
    expect(missing.err()).toMatch(/no-such-bucket-restore/u);
    const early = captureStreams();
    expect(
      await restoreMain(
        ['--bucket', bed.aws.bucket, '--as-of', '2001-01-01', '--journal', join(journalDir, 'x.jsonl')],
        early.streams,
        process.env,
      ),
    ).toBe(1);
    expect(early.err()).toMatch(/no completed backup on or before 2001-01-01/u);
  });
});

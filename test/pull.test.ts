import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { lstat, mkdir, readFile, readdir, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { CreateBucketCommand, PutObjectCommand, type S3Client, type StorageClass } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAwsClients } from '../shared/aws/clients.js';
import { LOCAL_CONTROL_DIR, META } from '../shared/constants.js';
import { objectKeyFor } from '../shared/keys.js';
import { placeKey } from '../shared/local/safePath.js';
import { runPull, type PullOptions, type PullSummary } from '../shared/pull/index.js';
import type { ResourceType } from '../shared/types.js';
import { useMotoEnvironment } from './support/awsTestBed.js';
import { UNSAFE_INDEX } from '../shared/local/unsafeIndex.js';

interface Seed {
  key: string;
  body: Buffer;
  metadata?: Record<string, string>;
  tags?: Record<string, string>;
  storageClass?: StorageClass;
  multipart?: boolean;
}

const md5 = (body: Buffer): string => createHash('md5').update(body).digest('hex');

/** An asset copy as the replicator writes it: key from objectKeyFor, MD5 and creation time in metadata. */
function asset(
  publicId: string,
  options: {
    resourceType?: ResourceType;
    format?: string;
    bytes?: number;
    withMd5?: boolean;
    createdAt?: string;
  } = {},
): Seed {
  const resourceType = options.resourceType ?? 'image';
  const body = randomBytes(options.bytes ?? 1000 + Math.floor(Math.random() * 4000));
  const createdAt = options.createdAt ?? '2021-06-15T10:20:30Z';
  const metadata: Record<string, string> = {
    [META.publicId]: encodeURIComponent(publicId),
    [META.createdAt]: createdAt,
    [META.resourceType]: resourceType,
    [META.deliveryType]: 'upload',
    [META.bytes]: String(body.length),
  };
  if (options.withMd5 ?? true) metadata[META.md5] = md5(body);
  return {
    key: objectKeyFor({ resourceType, deliveryType: 'upload', publicId, format: options.format }),
    body,
    metadata,
  };
}

async function createBucket(s3: S3Client): Promise<string> {
  const bucket = `pull-${randomUUID().slice(0, 8)}`;
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

async function seed(s3: S3Client, bucket: string, objects: Seed[]): Promise<void> {
  for (const object of objects) {
    const tagging = object.tags ? new URLSearchParams(object.tags).toString() : undefined;
    if (object.multipart) {
      await new Upload({
        client: s3,
        partSize: 5 * 1024 * 1024,
        params: {
          Bucket: bucket,
          Key: object.key,
          Body: object.body,
          Metadata: object.metadata,
          Tagging: tagging,
        },
      }).done();
    } else {
      await s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: object.key,
          Body: object.body,
          Metadata: object.metadata,
          Tagging: tagging,
          StorageClass: object.storageClass,
        }),
      );
    }
  }
}

/** Counts the S3 commands a client sends, by name. */
function countCommands(s3: S3Client): Map<string, number> {
  const counts = new Map<string, number>();
  s3.middlewareStack.add(
    (next, context) => async (args) => {
      const name = (context.commandName ?? '?').replace(/Command$/u, '');
      counts.set(name, (counts.get(name) ?? 0) + 1);
      return next(args);
    },
    { step: 'initialize', name: `count-${randomUUID()}` },
  );
  return counts;
}

interface PullRun {
  summary: PullSummary;
  events: Record<string, unknown>[];
}

async function pull(s3: S3Client, options: PullOptions): Promise<PullRun> {
  const lines: string[] = [];
  const summary = await runPull(
    { attempts: 2, ...options },
    {
      s3,
      out: { write: (chunk: string) => lines.push(...chunk.split('\n').filter(Boolean)) },
      mode: 'json',
    },
  );
  return { summary, events: lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

function tempDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `pull-${label}-`));
}

/** Every regular file under `dir` (outside the control folder), as relative paths. */
/** The files the objects became (the `_unsafe/` index is not one of them). */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)).split('\\').join('/'))
    .filter((p) => !p.startsWith(`${LOCAL_CONTROL_DIR}/`) && p !== UNSAFE_INDEX)
    .sort();
}

describe('npm run pull on a moto bucket', () => {
  let s3: S3Client;
  let bucket: string;
  let library: Seed[];
  const dirs: string[] = [];

  beforeAll(async () => {
    useMotoEnvironment();
    s3 = createAwsClients().s3;
    bucket = await createBucket(s3);
    const noMd5 = asset('legacy/no-md5', { format: 'png', withMd5: false });
    const tagged = asset('legacy/tagged', { format: 'png', withMd5: false });
    tagged.tags = { md5: md5(tagged.body) };
    const bigWithMd5 = {
      ...asset('videos/big', { resourceType: 'video', format: 'mp4', bytes: 6 * 1024 * 1024 + 12345 }),
      multipart: true,
    };
    const bigNoMd5 = {
      ...asset('videos/big-unverified', {
        resourceType: 'video',
        format: 'mov',
        bytes: 6 * 1024 * 1024 + 1,
        withMd5: false,
      }),
      multipart: true,
    };
    library = [
      asset('plain', { format: 'jpg' }),
      asset('Photos/Été 2024/plage', { format: 'jpg', createdAt: '2019-02-03T04:05:06Z' }),
      asset('a b+c & d', { format: 'webp' }),
      asset('100%/x?y#z*"<>|:', { format: 'gif' }),
      asset('..', { format: 'jpg' }),
      asset('dots/./in/../path', { format: 'jpg' }),
      asset('😀/smile', { format: 'png' }),
      asset('folder/', { format: 'jpg' }),
      asset('docs/readme.txt', { resourceType: 'raw' }),
      asset('con', { resourceType: 'raw' }),
      asset('empty', { format: 'jpg', bytes: 0 }),
      noMd5,
      tagged,
      bigWithMd5,
      bigNoMd5,
      { key: 'manifests/run-1/part-0.jsonl.gz', body: randomBytes(700) },
    ];
    await seed(s3, bucket, library);
  });

  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  function freshDest(label: string): string {
    const dir = tempDir(label);
    dirs.push(dir);
    return dir;
  }

  it('mirrors the bucket byte for byte, with creation times and MD5 checks', async () => {
    const dest = freshDest('mirror');

    const { summary, events } = await pull(s3, { dest, bucket });

    expect(summary).toMatchObject({ listed: library.length, downloaded: library.length, failed: 0 });
    const onDisk: Record<string, string> = {};
    const times: Record<string, string> = {};
    for (const object of library) {
      const path = join(dest, ...placeKey(object.key).relative.split('/'));
      onDisk[object.key] = md5(await readFile(path));
      times[object.key] = (await stat(path)).mtime.toISOString();
    }
    expect(onDisk).toEqual(Object.fromEntries(library.map((o) => [o.key, md5(o.body)])));
    for (const object of library.filter((o) => o.metadata?.[META.createdAt])) {
      expect(times[object.key]).toBe(new Date(object.metadata?.[META.createdAt] ?? '').toISOString());
    }
    const sources = Object.fromEntries(
      events.filter((e) => e.action === 'downloaded').map((e) => [e.key as string, e.md5Source]),
    );
    expect(sources[library[0]?.key ?? '']).toBe('metadata');
    expect(
      sources[
        objectKeyFor({
          resourceType: 'image',
          deliveryType: 'upload',
          publicId: 'legacy/tagged',
          format: 'png',
        })
      ],
    ).toBe('tag');
    expect(
      sources[
        objectKeyFor({
          resourceType: 'image',
          deliveryType: 'upload',
          publicId: 'legacy/no-md5',
          format: 'png',
        })
      ],
    ).toBe('etag');
    expect(
      sources[
        objectKeyFor({
          resourceType: 'video',
          deliveryType: 'upload',
          publicId: 'videos/big-unverified',
          format: 'mov',
        })
      ],
    ).toBe('none');
    expect(summary.sizeOnly).toBe(1);
    // `con` is a reserved device name on Windows: kept, under _unsafe/.
    expect(summary.unsafe).toBe(1);
  });

  it('transfers nothing on a second pull, from the listing alone', async () => {
    const dest = freshDest('second');
    await pull(s3, { dest, bucket });
    const client = createAwsClients().s3;
    const counts = countCommands(client);

    const { summary } = await pull(client, { dest, bucket });

    expect(summary).toMatchObject({ downloaded: 0, downloadedBytes: 0, skipped: library.length, failed: 0 });
    expect([...counts.keys()]).toEqual(['ListObjectsV2']);
  });

  it('finds a corrupted local file with --verify and fetches it again', async () => {
    const dest = freshDest('verify');
    await pull(s3, { dest, bucket });
    const victim = library[1] as Seed;
    const path = join(dest, ...victim.key.split('/'));
    const before = await stat(path);
    const bytes = Buffer.from(victim.body);
    bytes[10] = (bytes[10] ?? 0) ^ 0xff;
    await writeFile(path, bytes);
    await utimes(path, before.atime, before.mtime);

    const plain = await pull(s3, { dest, bucket });
    const verified = await pull(s3, { dest, bucket, verify: true });

    expect(plain.summary.downloaded).toBe(0);
    expect(verified.summary).toMatchObject({
      verified: library.length,
      corrupt: 1,
      downloaded: 1,
      failed: 0,
    });
    expect(md5(await readFile(path))).toBe(md5(victim.body));
  });

  it('adopts files already on the drive (a lost index) by MD5 instead of downloading them', async () => {
    const dest = freshDest('adopt');
    await pull(s3, { dest, bucket });
    await rm(join(dest, LOCAL_CONTROL_DIR), { recursive: true });
    const client = createAwsClients().s3;
    const counts = countCommands(client);

    const { summary } = await pull(client, { dest, bucket });

    // The multipart object with no MD5 anywhere cannot be proven equal, so it alone is fetched again.
    expect(summary).toMatchObject({ downloaded: 1, adopted: library.length - 1, failed: 0 });
    expect(counts.get('GetObject')).toBe(1);
  });

  it('reports an object whose bytes do not match its recorded MD5 and leaves no file behind', async () => {
    const bad = asset('broken', { format: 'jpg' });
    bad.metadata = { ...bad.metadata, [META.md5]: '0'.repeat(32) };
    const badBucket = await createBucket(s3);
    await seed(s3, badBucket, [bad, asset('fine', { format: 'jpg' })]);
    const dest = freshDest('bad');

    const { summary } = await pull(s3, { dest, bucket: badBucket });

    expect(summary).toMatchObject({ downloaded: 1, failed: 1 });
    expect(summary.failures[0]?.error).toContain('does not match');
    await expect(lstat(join(dest, ...bad.key.split('/')))).rejects.toThrow();
    expect(await readdir(join(dest, LOCAL_CONTROL_DIR, 'partial'))).toEqual([]);
  });

  it('never writes outside the destination, whatever the keys are called', async () => {
    const hostileBucket = await createBucket(s3);
    const hostile = [
      '../x',
      '/abs',
      'a/../../b',
      'a\\b',
      'a\u0000b',
      `seg/${'y'.repeat(300)}`,
      '../../etc/passwd',
    ];
    await seed(
      s3,
      hostileBucket,
      hostile.map((key) => ({ key, body: Buffer.from(`body of ${JSON.stringify(key)}`) })),
    );
    const parent = freshDest('hostile');
    const dest = join(parent, 'dest');
    await mkdir(dest);

    const { summary, events } = await pull(s3, { dest, bucket: hostileBucket });

    expect(summary).toMatchObject({ downloaded: hostile.length, unsafe: hostile.length, failed: 0 });
    expect(await readdir(parent)).toEqual(['dest']);
    const files = await filesUnder(dest);
    expect(files).toHaveLength(hostile.length);
    const index = await readFile(join(dest, ...UNSAFE_INDEX.split('/')), 'utf8');
    expect(index.trim().split('\n')).toHaveLength(hostile.length + 1);
    for (const file of files) {
      expect(file.startsWith('_unsafe/')).toBe(true);
      expect(relative(dest, resolve(dest, file)).startsWith('..')).toBe(false);
    }
    const reasons = events.filter((e) => e.action === 'unsafe-name').map((e) => e.reason);
    expect(reasons).toContain("'..' path segment");
    expect(reasons).toContain('absolute path');
  });

  it('refuses to write through a symlink planted inside the destination', async () => {
    const outside = freshDest('outside');
    const dest = freshDest('planted');
    await symlink(outside, join(dest, 'assets'));

    const { summary } = await pull(s3, { dest, bucket, prefix: 'assets/image/upload/plain' });

    expect(summary.failed).toBe(1);
    expect(summary.failures[0]?.error).toContain('symbolic link');
    expect(await readdir(outside)).toEqual([]);
  });

  it('reports archived objects, requests their restore, and downloads them once restored', async () => {
    const archiveBucket = await createBucket(s3);
    const deep = { ...asset('old/deep', { format: 'jpg' }), storageClass: 'DEEP_ARCHIVE' as StorageClass };
    const glacier = { ...asset('old/glacier', { format: 'jpg' }), storageClass: 'GLACIER' as StorageClass };
    const instant = {
      ...asset('old/instant', { format: 'jpg' }),
      storageClass: 'GLACIER_IR' as StorageClass,
    };
    await seed(s3, archiveBucket, [deep, glacier, instant]);
    const dest = freshDest('archive');
    const client = createAwsClients().s3;
    const counts = countCommands(client);

    const first = await pull(client, { dest, bucket: archiveBucket });
    const headsBefore = counts.get('HeadObject') ?? 0;
    const second = await pull(client, { dest, bucket: archiveBucket, restoreArchived: 'Bulk' });
    const restores = counts.get('RestoreObject') ?? 0;
    // moto completes a restore at once (its default "immediate" state transition); a client that
    // reports the restore as still running stands in for the hours real Glacier takes.
    const slowGlacier = createAwsClients().s3;
    slowGlacier.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        if (context.commandName === 'HeadObjectCommand')
          (result.output as { Restore?: string }).Restore = 'ongoing-request="true"';
        return result;
      },
      { step: 'initialize', name: 'restore-in-progress' },
    );
    const meanwhile = await pull(slowGlacier, { dest, bucket: archiveBucket });
    const third = await pull(client, { dest, bucket: archiveBucket });

    expect(first.summary).toMatchObject({ downloaded: 1, archived: 2, failed: 0 });
    expect(headsBefore).toBe(0);
    expect(
      first.events
        .filter((e) => e.action === 'archived')
        .map((e) => e.key)
        .sort(),
    ).toEqual([deep.key, glacier.key].sort());
    expect(second.summary).toMatchObject({ downloaded: 0, restoreRequested: 2, archived: 0, failed: 0 });
    expect(restores).toBe(2);
    expect(meanwhile.summary).toMatchObject({ downloaded: 0, restoring: 2, archived: 0, failed: 0 });
    expect(third.summary).toMatchObject({ downloaded: 2, archived: 0, restoreRequested: 0, failed: 0 });
    for (const object of [deep, glacier, instant]) {
      expect(md5(await readFile(join(dest, ...object.key.split('/'))))).toBe(md5(object.body));
    }
  });

  it('previews deletions with --dry-run and deletes only stale files inside the destination', async () => {
    const dest = freshDest('prune');
    const outside = freshDest('prune-outside');
    await pull(s3, { dest, bucket });
    await mkdir(join(dest, 'assets/image/upload/gone'), { recursive: true });
    await writeFile(join(dest, 'assets/image/upload/gone/old.jpg'), 'stale');
    await writeFile(join(dest, 'notes.txt'), 'stale too');
    await writeFile(join(dest, LOCAL_CONTROL_DIR, 'keep.txt'), 'control');
    await writeFile(join(outside, 'precious.txt'), 'outside');
    await symlink(outside, join(dest, 'link-to-outside'));
    await symlink(join(outside, 'precious.txt'), join(dest, 'assets/file-link'));

    const preview = await pull(s3, { dest, bucket, delete: true, dryRun: true });
    const afterPreview = await filesUnder(dest);
    const real = await pull(s3, { dest, bucket, delete: true });

    expect(preview.summary.deleted).toBe(2);
    expect(preview.events.filter((e) => e.action === 'would-delete').map((e) => e.path)).toEqual([
      'assets/image/upload/gone/old.jpg',
      'notes.txt',
    ]);
    expect(afterPreview).toContain('notes.txt');
    expect(real.summary).toMatchObject({ deleted: 2, downloaded: 0, failed: 0 });
    const remaining = await filesUnder(dest);
    expect(remaining).not.toContain('notes.txt');
    expect(remaining).toHaveLength(library.length);
    await expect(lstat(join(dest, 'assets/image/upload/gone'))).rejects.toThrow();
    expect(await readFile(join(dest, LOCAL_CONTROL_DIR, 'keep.txt'), 'utf8')).toBe('control');
    expect(await readFile(join(outside, 'precious.txt'), 'utf8')).toBe('outside');
    expect((await lstat(join(dest, 'link-to-outside'))).isSymbolicLink()).toBe(true);
  });

  it('with --prefix, downloads and prunes only under that prefix', async () => {
    const dest = freshDest('prefix');
    await mkdir(join(dest, 'manifests'), { recursive: true });
    await writeFile(join(dest, 'manifests/other.txt'), 'not in scope');
    await mkdir(join(dest, 'assets/video'), { recursive: true });
    await writeFile(join(dest, 'assets/video/stale.mp4'), 'in scope');

    const { summary } = await pull(s3, { dest, bucket, prefix: 'assets/video/', delete: true });

    expect(summary).toMatchObject({ listed: 2, downloaded: 2, deleted: 1 });
    expect(await readFile(join(dest, 'manifests/other.txt'), 'utf8')).toBe('not in scope');
  });

  it('does nothing at all in a dry run on a fresh folder', async () => {
    const dest = freshDest('dry');

    const { summary, events } = await pull(s3, { dest, bucket, dryRun: true, delete: true });

    expect(summary).toMatchObject({ downloaded: library.length, failed: 0, deleted: 0 });
    expect(events.filter((e) => e.action === 'would-download')).toHaveLength(library.length);
    expect(await readdir(dest)).toEqual([]);
  });
});

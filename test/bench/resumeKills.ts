import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readdir, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { LOCAL_CONTROL_DIR, META } from '../../shared/constants.js';
import { objectKeyFor } from '../../shared/keys.js';
import { generateLibrary, startCloudinaryDouble, type CloudinaryDouble } from '../double/index.js';
import type { DoubleAsset } from '../double/types.js';
import { differencesFromLibrary } from '../support/backupBed.js';
import type { BenchContext } from './context.js';
import { freshAwsResources, motoEnvironment, type AwsResources } from './support/awsBed.js';
import { trackGroup, untrackGroup } from './support/child.js';
import { totalBytes, warmEtags } from './support/library.js';
import { makeScratch, removeScratch } from './support/scratch.js';
import type { Mode } from './workloads.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TSX_CLI = createRequire(import.meta.url).resolve('tsx/cli');
const MB = 1_000_000;

export interface KillTrials {
  /** Bytes per second each delivery was throttled to. */
  throttle: number;
  command: 'backup' | 'replicate';
  label: string;
  assets: number;
  libraryBytes: number;
  kills: number;
  /** Bytes the double served over every killed run and the completing one. */
  served: number;
  waste: number;
  wrongFiles: number;
  openUploads: number;
  /** Served to the killed runs but not kept (on disk, or in S3 parts and objects) when the last one died. */
  lostAtKills: number;
  seconds: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const served = (double: CloudinaryDouble) => double.counters.deliveryBytes + double.counters.downloadBytes;

/** Videos of 20–500 MB (fewer and smaller with --quick), each delivery throttled so kills land mid-file. */
function killLibrary(mode: Mode) {
  const quick = mode === 'quick';
  return {
    seed: 'bench-resume-kills',
    counts: { video: { upload: quick ? 3 : 8 } },
    sizes: { video: quick ? ([20 * MB, 80 * MB] as const) : ([100 * MB, 500 * MB] as const) },
  };
}

/** Per delivery: slow enough that a kill lands mid-file and little sits in socket buffers when it does. */
const throttle = (mode: Mode) => (mode === 'quick' ? 2 * MB : 8 * MB);

function startCli(args: string[], env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, [TSX_CLI, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    detached: true,
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  const pid = child.pid ?? 0;
  trackGroup(pid);
  child.once('exit', () => untrackGroup(pid));
  return child;
}

async function killGroup(child: ChildProcess): Promise<void> {
  const pid = child.pid ?? 0;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    return;
  }
  for (;;) {
    try {
      process.kill(-pid, 0);
    } catch {
      return;
    }
    await sleep(20);
  }
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
}

/** Bytes on disk in finished files and partial files (the backup's progress). */
async function backupProgress(dest: string): Promise<number> {
  let total = 0;
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.isFile()) total += (await stat(path).catch(() => undefined))?.size ?? 0;
    }
  };
  await walk(join(dest, 'assets'));
  await walk(join(dest, LOCAL_CONTROL_DIR, 'tmp'));
  return total;
}

/** Bytes of files in a folder (none when it is missing). */
async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir).catch(() => [] as string[]))
    total += (await stat(join(dir, name)).catch(() => undefined))?.size ?? 0;
  return total;
}

/**
 * Bytes in S3 (finished objects and the parts of open uploads) and the parts the killed runs kept
 * on disk (the replicator's progress).
 */
async function replicateProgress(s3: S3Client, bucket: string, kept: string): Promise<number> {
  let total = await folderBytes(kept);
  const objects = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'assets/' }));
  for (const object of objects.Contents ?? []) total += object.Size ?? 0;
  const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  for (const upload of uploads.Uploads ?? []) {
    const parts = await s3
      .send(new ListPartsCommand({ Bucket: bucket, Key: upload.Key, UploadId: upload.UploadId }))
      .catch(() => undefined);
    for (const part of parts?.Parts ?? []) total += part.Size ?? 0;
  }
  return total;
}

async function wrongObjects(s3: S3Client, bucket: string, double: CloudinaryDouble): Promise<number> {
  let wrong = 0;
  for (const asset of double.library.all() as DoubleAsset[]) {
    const key = objectKeyFor({
      resourceType: asset.resource_type,
      deliveryType: asset.type,
      publicId: asset.public_id,
      ...(asset.format ? { format: asset.format } : {}),
    });
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key })).catch(() => undefined);
    const md5 = head?.Metadata?.[META.md5];
    if (!head || head.ContentLength !== asset.bytes || md5 !== (await double.library.md5Of(asset)))
      wrong += 1;
  }
  return wrong;
}

/**
 * Kill -9 trials: the command is started and killed `kills` times, each time once its progress (bytes
 * on disk, or in S3 objects and uploaded parts) has passed the next of random points spread over the
 * library, then run to completion. Waste is bytes served ÷ library bytes.
 */
export async function killTrials(
  context: BenchContext,
  command: 'backup' | 'replicate',
  kills = 10,
): Promise<KillTrials> {
  const library = generateLibrary(killLibrary(context.mode));
  const double = await startCloudinaryDouble({ library, rateLimitPerHour: 1_000_000 });
  const libraryBytes = totalBytes(library);
  const dest = await makeScratch(`kills-${command}`);
  let aws: AwsResources | undefined;
  let s3: S3Client | undefined;
  try {
    await warmEtags(library);
    // Slow enough that each kill lands inside a file: 10 kills over the library's length.
    double.faults.add({
      route: ['delivery', 'download'],
      kind: 'bandwidth',
      bytesPerSecond: throttle(context.mode),
    });
    let args: string[];
    let env: Record<string, string> = { CLOUDINARY_URL: double.cloudinaryUrl };
    if (command === 'backup') {
      args = ['shared/cli/backup.ts', '--dest', dest, '--json'];
    } else {
      aws = await freshAwsResources(50);
      s3 = new S3Client({ endpoint: aws.endpoint, forcePathStyle: true, region: 'us-east-1' });
      args = ['shared/cli/replicate.ts', '--json'];
      await mkdir(join(dest, 'tmp'), { recursive: true });
      env = {
        ...env,
        // The runs' temporary folder (where copies keep the parts they have not recorded) is the bench's.
        TMPDIR: join(dest, 'tmp'),
        ...motoEnvironment(aws.endpoint),
        BUCKET_NAME: aws.bucket,
        TABLE_NAME: aws.table,
        QUEUE_URL: aws.queueUrl,
        DLQ_URL: aws.dlqUrl,
        IN_FLIGHT_SECONDS: '3',
        MAX_RECEIVES: '50',
        DELIVERY_TYPES: 'upload',
      };
    }
    const progress = () =>
      command === 'backup'
        ? backupProgress(dest)
        : replicateProgress(
            s3 as S3Client,
            aws?.bucket ?? '',
            join(dest, 'tmp', 'cloudinary-replicator-parts'),
          );
    context.log(`resume: ${command} killed ${kills} times, ${(libraryBytes / 1e6).toFixed(0)} MB of videos`);
    double.counters.reset();
    const started = performance.now();
    // Kill points spread over the library, each inside the part still to copy.
    let random = 0x2545f491;
    const next = () => {
      random = (Math.imul(random ^ (random >>> 15), 2246822519) + 0x9e3779b9) >>> 0;
      return random / 2 ** 32;
    };
    const points = Array.from(
      { length: kills },
      (_, i) => ((i + 0.2 + 0.6 * next()) / (kills + 1)) * libraryBytes,
    );
    let landed = 0;
    for (const point of points) {
      const child = startCli(args, env);
      const end = exited(child);
      while (child.exitCode === null && (await progress()) < point) await sleep(50);
      if (child.exitCode !== null) break;
      await killGroup(child);
      await end;
      landed += 1;
    }
    // What the killed runs were served (counted once their connections closed) and what they kept.
    const settle = async () => {
      let before = -1;
      while (served(double) !== before) {
        before = served(double);
        await sleep(500);
      }
      return before;
    };
    const lostAtKills = (await settle()) - (await progress());
    const last = startCli(args, env);
    const code = await exited(last);
    if (code !== 0) throw new Error(`the completing ${command} run failed (exit ${code})`);
    await settle();
    const wrongFiles =
      command === 'backup'
        ? (await differencesFromLibrary(dest, double.library)).length
        : await wrongObjects(s3 as S3Client, aws?.bucket ?? '', double);
    const openUploads =
      command === 'replicate'
        ? ((await (s3 as S3Client).send(new ListMultipartUploadsCommand({ Bucket: aws?.bucket ?? '' })))
            .Uploads?.length ?? 0) +
          (await readdir(join(dest, 'tmp', 'cloudinary-replicator-parts')).catch(() => [])).length
        : (await readdir(join(dest, LOCAL_CONTROL_DIR, 'tmp')).catch(() => [])).length;
    return {
      command,
      throttle: throttle(context.mode),
      label: `${library.size} videos ${killLibrary(context.mode)
        .sizes.video.map((s) => s / MB)
        .join('–')} MB`,
      assets: library.size,
      libraryBytes,
      kills: landed,
      served: served(double),
      waste: served(double) / libraryBytes,
      wrongFiles,
      openUploads,
      lostAtKills,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    s3?.destroy();
    await removeScratch(dest);
    await double.close();
  }
}

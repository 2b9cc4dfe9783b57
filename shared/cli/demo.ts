import { createHash } from 'node:crypto';
import { access, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { generateLibrary, startCloudinaryDouble, type CloudinaryDouble } from '../../test/double/index.js';
import { parseCloudinaryUrl } from '../config.js';
import { LOCAL_CONTROL_DIR } from '../constants.js';
import { ConfigError } from '../errors.js';
import { objectKeyFor } from '../keys.js';
import { LocalObjectStore } from '../local/LocalObjectStore.js';
import { formatBytes } from '../progress.js';
import {
  exitWhenDone,
  formatHelp,
  parseArgs,
  runCli,
  type CliStreams,
  type CommandSpec,
  type FlagSpec,
} from './args.js';
import { backupMain } from './backup.js';
import { restoreMain } from './restore.js';

export const DEMO_COMMAND = {
  usage: 'npm run demo [-- --dest DIR]',
  summary:
    'Shows the whole backup working with no credentials and no network: a built-in sample Cloudinary ' +
    'library (photos, videos, documents, private and authenticated assets, awkward names) served on ' +
    '127.0.0.1 is backed up into a folder, backed up again (nothing is downloaded twice), verified, and ' +
    'a few assets deleted at the source are restored from the backup.',
  flags: {
    dest: {
      type: 'string',
      valueName: 'DIR',
      default: 'demo-backup',
      description: 'Folder for the demo backup.',
    },
    json: { type: 'boolean', description: 'JSON lines instead of the progress display.' },
  },
} satisfies CommandSpec<Record<string, FlagSpec>>;

/** Left in a demo folder so a later demo may clear it, and never a folder it did not make. */
const DEMO_MARKER = 'made-by-npm-run-demo';

/** The sample library: a few hundred assets of every kind, small enough to copy in seconds. */
export function demoLibrary() {
  return generateLibrary({
    seed: 'demo',
    counts: {
      image: { upload: 220, private: 25, authenticated: 10 },
      video: { upload: 6, private: 2 },
      raw: { upload: 40, private: 5, authenticated: 2 },
    },
    sizes: { image: [40_000, 1_500_000], video: [2_000_000, 12_000_000], raw: [4_000, 400_000] },
    awkwardIds: 16,
    createdBetween: [new Date('2019-05-01T00:00:00Z'), new Date('2025-10-01T00:00:00Z')],
  });
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** Clears a previous demo's folder; refuses a folder the demo did not make. */
async function prepareFolder(dest: string): Promise<void> {
  if (!(await exists(dest))) return;
  const entries = await readdir(dest);
  if (entries.length === 0) return;
  if (!(await exists(join(dest, LOCAL_CONTROL_DIR, DEMO_MARKER)))) {
    throw new ConfigError(
      `${dest} exists and was not made by the demo; remove it or pass --dest with another folder.`,
    );
  }
  await rm(dest, { recursive: true, force: true });
}

/**
 * Hashes every backed-up file where the backup put it (its own index: a name that collides on a
 * case-insensitive disk lives under `_unsafe/`) and compares it with what the source serves.
 */
async function verifyTree(
  dest: string,
  double: CloudinaryDouble,
): Promise<{ files: number; bytes: number; bad: string[] }> {
  const bad: string[] = [];
  let bytes = 0;
  const assets = double.library.all();
  const store = new LocalObjectStore(dest);
  try {
    for (const asset of assets) {
      const key = objectKeyFor({
        resourceType: asset.resource_type,
        deliveryType: asset.type,
        publicId: asset.public_id,
        format: asset.format,
      });
      const expected = await double.library.md5Of(asset);
      const got = await hashObject(store, key).catch(() => undefined);
      if (!got || got.md5 !== expected || got.bytes !== asset.bytes) bad.push(key);
      else bytes += got.bytes;
    }
  } finally {
    store.close();
  }
  return { files: assets.length - bad.length, bytes, bad };
}

async function hashObject(store: LocalObjectStore, key: string): Promise<{ md5: string; bytes: number }> {
  const hash = createHash('md5');
  let bytes = 0;
  for await (const chunk of await store.get(key)) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { md5: hash.digest('hex'), bytes };
}

/** Assets the restore step deletes at the sample account: one of each kind the backup keeps. */
function assetsToLose(double: CloudinaryDouble) {
  const all = double.library.all();
  const picks = [
    all.find((a) => a.resource_type === 'image' && a.type === 'private'),
    all.find((a) => a.resource_type === 'video'),
    all.find((a) => a.resource_type === 'raw' && a.type === 'authenticated'),
    all.find((a) => a.tags.includes('awkward')),
    all.find((a) => Object.keys(a.context).length > 0 && Object.keys(a.metadata).length > 0) ??
      all.find((a) => Object.keys(a.context).length > 0),
  ];
  return [...new Set(picks.filter((a) => a !== undefined))];
}

/**
 * Step 3: deletes a few assets at the sample account, restores them from the backup folder with
 * `npm run restore`, and checks each came back with the backed-up bytes, tags, context and metadata.
 */
async function restoreStep(
  double: CloudinaryDouble,
  dest: string,
  json: boolean,
  streams: CliStreams,
  env: NodeJS.ProcessEnv,
  credentials: ReturnType<typeof parseCloudinaryUrl>,
): Promise<boolean> {
  const lost = assetsToLose(double);
  const expected = await Promise.all(
    lost.map(async (a) => ({ asset: a, md5: await double.library.md5Of(a) })),
  );
  for (const a of lost) double.library.delete(a.resource_type, a.type, a.public_id);
  const args = [
    '--from',
    dest,
    ...lost.flatMap((a) => ['--public-id', a.public_id]),
    '--journal',
    join(dest, LOCAL_CONTROL_DIR, 'restore-journal.jsonl'),
    ...(json ? ['--json'] : []),
  ];
  const code = await restoreMain(args, streams, env, {
    credentials,
    title: `\n3) Restore: ${lost.length} assets deleted at Cloudinary, put back from the backup`,
  });
  let back = 0;
  for (const { asset, md5 } of expected) {
    const now = double.library.get(asset.resource_type, asset.type, asset.public_id);
    if (
      now !== undefined &&
      (await double.library.md5Of(now)) === md5 &&
      JSON.stringify([now.tags, now.context, now.metadata]) ===
        JSON.stringify([asset.tags, asset.context, asset.metadata])
    ) {
      back += 1;
    }
  }
  if (!json) {
    streams.stdout.write(
      `${back} of ${lost.length} deleted assets are back at Cloudinary with the backed-up bytes, tags, context and metadata.\n`,
    );
  }
  return code === 0 && back === lost.length;
}

/** How to name a folder for the person who ran the demo: relative when it is below here. */
function displayPath(path: string): string {
  const below = relative(process.cwd(), path);
  if (below === '') return '.';
  return below.startsWith('..') || isAbsolute(below) ? path : `./${below}`;
}

export async function demoMain(
  argv: readonly string[],
  streams: CliStreams = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  return runCli(
    async () => {
      const { flags } = parseArgs(argv, DEMO_COMMAND);
      if (flags.help) {
        streams.stdout.write(formatHelp(DEMO_COMMAND));
        return 0;
      }
      const dest = resolve(flags.dest ?? 'demo-backup');
      const say = (text: string) => {
        if (!flags.json) streams.stdout.write(`${text}\n`);
      };
      await prepareFolder(dest);
      const double = await startCloudinaryDouble({ library: demoLibrary(), cloudName: 'demo' });
      try {
        const assets = double.library.all();
        const total = assets.reduce((n, a) => n + a.bytes, 0);
        say(
          `Sample Cloudinary account "${double.cloudName}" on ${double.origin}: ${assets.length} assets, ` +
            `${formatBytes(total)} (photos, videos, documents; public, private and authenticated; awkward names).`,
        );
        const credentials = parseCloudinaryUrl(double.cloudinaryUrl);
        const args = ['--dest', dest, ...(flags.json ? ['--json'] : [])];
        const env = { ...process.env, CLOUDINARY_URL: double.cloudinaryUrl };
        // Marked before the first copy: a demo stopped half-way can still be cleared by the next one.
        await mkdir(join(dest, LOCAL_CONTROL_DIR), { recursive: true });
        await writeFile(join(dest, LOCAL_CONTROL_DIR, DEMO_MARKER), 'npm run demo may clear this folder\n');
        const first = await backupMain(args, streams, env, { credentials, title: '\n1) First backup' });
        if (first !== 0) return first;
        const downloadedBefore = double.counters.deliveryBytes + double.counters.downloadBytes;
        const second = await backupMain(args, streams, env, {
          credentials,
          title: '\n2) Second backup: nothing changed, so nothing is downloaded',
        });
        if (second !== 0) return second;
        const again = double.counters.deliveryBytes + double.counters.downloadBytes - downloadedBefore;
        const check = await verifyTree(dest, double);
        const where = displayPath(dest);
        say('');
        say(`Second run downloaded ${formatBytes(again)}.`);
        say(
          `Verified ${check.files} of ${assets.length} files (${formatBytes(check.bytes)}) against the source's MD5s` +
            (check.bad.length ? `; ${check.bad.length} differ: ${check.bad.slice(0, 5).join(', ')}` : '.'),
        );
        say(
          `Your files are in ${where}/assets/<resource type>/<delivery type>/<public id>; manifests in ${where}/manifests/.`,
        );
        const restored = await restoreStep(double, dest, flags.json === true, streams, env, credentials);
        // In a clone the npm script runs it; installed, the command does.
        const backup =
          process.env.npm_lifecycle_event === 'demo' ? 'npm run backup --' : 'npx cloudinary-backup backup';
        say(`Back up your own account:  CLOUDINARY_URL=cloudinary://KEY:SECRET@CLOUD ${backup} --dest DIR`);
        return check.bad.length === 0 && again === 0 && restored ? 0 : 1;
      } finally {
        await double.close();
      }
    },
    { name: 'demo', streams },
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  exitWhenDone(await demoMain(process.argv.slice(2)));
}

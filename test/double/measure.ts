/**
 * Throughput of the double on this machine: `npx tsx test/double/measure.ts`.
 * Admin calls/s through the real SDK, delivery MB/s with plain fetch (body discarded), MD5 MB/s.
 */
import { get } from 'node:http';
import { generateLibrary, loadSdkFor, startCloudinaryDouble } from './index.js';
import type { DoubleAsset } from './index.js';

const MB = 1_000_000;
const GIB = 1024 ** 3;

const library = generateLibrary({
  seed: 'measure',
  counts: { image: { upload: 20_000 }, video: { upload: 200 }, raw: { upload: 2_000 } },
  sizes: { image: [1_000, 100_000], video: [1_000, 100_000], raw: [1_000, 100_000] },
  large: [
    { resourceType: 'video', bytes: 2 * GIB, publicId: 'large/two-gib' },
    ...Array.from({ length: 4 }, (_, i) => ({
      resourceType: 'video' as const,
      bytes: GIB / 2,
      publicId: `large/half-${i}`,
    })),
  ],
});
const double = await startCloudinaryDouble({ library, rateLimitPerHour: 10_000_000 });
const cloudinary = await loadSdkFor(double);

async function timed<T>(run: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const result = await run();
  return [result, (performance.now() - started) / 1000];
}

async function adminRate(
  label: string,
  calls: number,
  concurrency: number,
  call: () => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const [, seconds] = await timed(() =>
    Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < calls) {
          next += 1;
          await call();
        }
      }),
    ),
  );
  console.log(`${label.padEnd(58)} ${(calls / seconds).toFixed(0).padStart(7)} calls/s`);
}

async function fetchDiscard(url: string): Promise<number> {
  const response = await fetch(url);
  if (!response.ok || response.body === null) throw new Error(`HTTP ${response.status}`);
  let bytes = 0;
  for await (const chunk of response.body) bytes += (chunk as Uint8Array).byteLength;
  return bytes;
}

function httpGetDiscard(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    get(url, (response) => {
      let bytes = 0;
      response.on('data', (chunk: Buffer) => (bytes += chunk.length));
      response.on('end', () => resolve(bytes));
      response.on('error', reject);
    }).on('error', reject);
  });
}

async function deliveryRate(
  label: string,
  assets: DoubleAsset[],
  read: (url: string) => Promise<number>,
): Promise<void> {
  const [sizes, seconds] = await timed(() =>
    Promise.all(assets.map((asset) => read(double.deliveryUrl(asset)))),
  );
  const total = sizes.reduce((a, b) => a + b, 0);
  console.log(
    `${label.padEnd(58)} ${(total / MB / seconds).toFixed(0).padStart(7)} MB/s (${(total / GIB).toFixed(1)} GiB)`,
  );
}

const twoGib = library.get('video', 'upload', 'large/two-gib');
const halves = [0, 1, 2, 3].map((i) => library.get('video', 'upload', `large/half-${i}`));
if (twoGib === undefined || halves.some((a) => a === undefined)) throw new Error('large assets missing');

console.log(`library: ${library.size} assets; node ${process.version}`);
// Warm the listing indexes once, as a long walk would.
await cloudinary.api.resources({ type: 'upload', max_results: 10 });
await adminRate('Admin list, 10 per page, sequential (SDK)', 1_000, 1, () =>
  cloudinary.api.resources({ type: 'upload', max_results: 10 }),
);
await adminRate('Admin list, 10 per page, 8 concurrent (SDK)', 2_000, 8, () =>
  cloudinary.api.resources({ type: 'upload', max_results: 10 }),
);
await adminRate('Admin list, 500 per page, sequential (SDK)', 200, 1, () =>
  cloudinary.api.resources({ type: 'upload', max_results: 500 }),
);
let cursor: string | undefined;
await adminRate('Admin list, 500 per page walking next_cursor (SDK)', 40, 1, async () => {
  const page = (await cloudinary.api.resources({
    type: 'upload',
    max_results: 500,
    ...(cursor && { next_cursor: cursor }),
  })) as { next_cursor?: string };
  cursor = page.next_cursor;
});
const someId = library.all()[0]?.public_id ?? '';
await adminRate('Admin details (etag cached), 8 concurrent (SDK)', 2_000, 8, () =>
  cloudinary.api.resource(someId),
);
await adminRate('Search, 100 per page (etags computed once), 4 concurrent', 200, 4, () =>
  cloudinary.search.expression('resource_type:raw').max_results(100).execute(),
);

await deliveryRate('Delivery, one 2 GiB asset, fetch', [twoGib], fetchDiscard);
await deliveryRate('Delivery, one 2 GiB asset, node:http', [twoGib], httpGetDiscard);
await deliveryRate('Delivery, 4 x 0.5 GiB in parallel, fetch', halves as DoubleAsset[], fetchDiscard);
await deliveryRate('Delivery, 4 x 0.5 GiB in parallel, node:http', halves as DoubleAsset[], httpGetDiscard);

const [, md5Seconds] = await timed(() => library.md5Of(twoGib));
console.log(
  `${'MD5 of the 2 GiB asset (library.md5Of, first call)'.padEnd(58)} ${((2 * GIB) / MB / md5Seconds).toFixed(0).padStart(7)} MB/s`,
);
const [, cachedSeconds] = await timed(() => library.md5Of(twoGib));
console.log(`${'MD5 again (cached)'.padEnd(58)} ${(cachedSeconds * 1000).toFixed(2).padStart(7)} ms`);
console.log(`process RSS at the end: ${(process.memoryUsage().rss / MB).toFixed(0)} MB`);
await double.close();

import { createHash } from 'node:crypto';
import { AWKWARD_PUBLIC_IDS } from './awkwardIds.js';
import { Library } from './Library.js';
import type { ResourceType } from './types.js';

export type SizeRange = readonly [min: number, max: number];

/** Realistic originals: phone photos, clips to long recordings, office documents. */
export const DEFAULT_SIZES: Readonly<Record<ResourceType, SizeRange>> = {
  image: [200_000, 8_000_000],
  video: [20_000_000, 4_000_000_000],
  raw: [10_000, 5_000_000],
};

export interface LargeAssetSpec {
  resourceType: ResourceType;
  type?: string;
  bytes: number;
  publicId?: string;
  format?: string;
}

export interface GenerateLibrarySpec {
  seed?: number | string;
  /** Assets per resource type and delivery type, e.g. `{ image: { upload: 100, private: 5 } }`. */
  counts: Partial<Record<ResourceType, Partial<Record<string, number>>>>;
  /** Log-uniform size range per resource type; `DEFAULT_SIZES` otherwise. */
  sizes?: Partial<Record<ResourceType, SizeRange>>;
  /**
   * Extra image/upload assets with the ids of `AWKWARD_PUBLIC_IDS` (tagged `awkward`): all of them for
   * `true`, the first N for a number (repeating with a ` ~k` suffix past the list).
   */
  awkwardIds?: boolean | number;
  /** Extra assets of exact sizes, e.g. one 5 GiB video. */
  large?: LargeAssetSpec[];
  /** Creation dates are spread over this range; 2024-01-01 to 2025-06-01 when absent. */
  createdBetween?: readonly [Date, Date];
}

const IMAGE_FORMATS = ['jpg', 'jpg', 'jpg', 'png', 'webp', 'gif', 'heic'];
const VIDEO_FORMATS = ['mp4', 'mp4', 'mov', 'webm', 'mp3'];
const RAW_EXTENSIONS = ['pdf', 'zip', 'docx', 'txt', 'csv', 'json'];
const FOLDERS = ['2023', '2024/spring', '2024/summer', 'events/launch', 'products', 'team', ''];
const TAGS = ['hero', 'archive', 'product', 'press', 'draft', 'team'];

/** A small, fast, seedable PRNG (sfc32). */
function randomSource(seed: string): () => number {
  const digest = createHash('sha256').update(`generateLibrary\0${seed}`).digest();
  let a = digest.readUInt32LE(0);
  let b = digest.readUInt32LE(4);
  let c = digest.readUInt32LE(8);
  let d = digest.readUInt32LE(12);
  return () => {
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    const t = (a + b + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4_294_967_296;
  };
}

function pick<T>(random: () => number, items: readonly T[]): T {
  const item = items[Math.floor(random() * items.length)];
  if (item === undefined) throw new Error('pick from an empty list');
  return item;
}

function logUniform(random: () => number, [min, max]: SizeRange): number {
  if (max <= min) return Math.max(0, Math.round(min));
  if (min < 1) return Math.round(min + random() * (max - min));
  return Math.round(Math.exp(Math.log(min) + random() * (Math.log(max) - Math.log(min))));
}

function folderPath(...parts: string[]): string {
  return parts.filter((part) => part.length > 0).join('/');
}

/** A deterministic library: the same spec always yields the same ids, sizes, dates and bytes. */
export function generateLibrary(spec: GenerateLibrarySpec): Library {
  const seed = String(spec.seed ?? 1);
  const library = new Library(seed);
  const random = randomSource(seed);
  const sizes = { ...DEFAULT_SIZES, ...spec.sizes };
  const [from, to] = spec.createdBetween ?? [
    new Date('2024-01-01T00:00:00Z'),
    new Date('2025-06-01T00:00:00Z'),
  ];
  const createdAt = (): Date =>
    new Date(from.getTime() + Math.floor(random() * (to.getTime() - from.getTime())));

  for (const resourceType of ['image', 'video', 'raw'] as const) {
    const perType = spec.counts[resourceType] ?? {};
    for (const type of Object.keys(perType).sort()) {
      const count = perType[type] ?? 0;
      for (let i = 0; i < count; i += 1) {
        const folder = pick(random, FOLDERS);
        const serial = String(i).padStart(6, '0');
        const tagged = random() < 0.3;
        const withContext = random() < 0.15;
        const withMetadata = random() < 0.1;
        const base = {
          resourceType,
          type,
          bytes: logUniform(random, sizes[resourceType]),
          createdAt: createdAt(),
          ...(tagged && {
            tags: [pick(random, TAGS), pick(random, TAGS)].filter((t, k, all) => all.indexOf(t) === k),
          }),
          ...(withContext && { context: { alt: `alt text ${serial}`, caption: `caption ${serial}` } }),
          ...(withMetadata && { metadata: { rating: Math.floor(random() * 5) + 1 } }),
        };
        if (resourceType === 'image') {
          library.add({
            ...base,
            publicId: folderPath('photos', folder, `img_${serial}`),
            format: pick(random, IMAGE_FORMATS),
          });
        } else if (resourceType === 'video') {
          library.add({
            ...base,
            publicId: folderPath('videos', folder, `clip_${serial}`),
            format: pick(random, VIDEO_FORMATS),
          });
        } else {
          library.add({
            ...base,
            publicId: folderPath('docs', folder, `doc_${serial}.${pick(random, RAW_EXTENSIONS)}`),
          });
        }
      }
    }
  }

  const awkwardCount =
    spec.awkwardIds === true
      ? AWKWARD_PUBLIC_IDS.length
      : typeof spec.awkwardIds === 'number'
        ? spec.awkwardIds
        : 0;
  for (let i = 0; i < awkwardCount; i += 1) {
    const round = Math.floor(i / AWKWARD_PUBLIC_IDS.length);
    const id = AWKWARD_PUBLIC_IDS[i % AWKWARD_PUBLIC_IDS.length] ?? '';
    library.add({
      publicId: round === 0 ? id : `${id} ~${round}`,
      resourceType: 'image',
      format: 'jpg',
      bytes: logUniform(random, sizes.image),
      createdAt: createdAt(),
      tags: ['awkward'],
    });
  }

  for (const [i, large] of (spec.large ?? []).entries()) {
    library.add({
      publicId: large.publicId ?? `large/${large.resourceType}_${i}`,
      resourceType: large.resourceType,
      type: large.type ?? 'upload',
      bytes: large.bytes,
      createdAt: createdAt(),
      ...(large.resourceType !== 'raw' && {
        format: large.format ?? (large.resourceType === 'video' ? 'mp4' : 'jpg'),
      }),
      ...(large.resourceType === 'raw' && large.format !== undefined && { format: large.format }),
    });
  }
  return library;
}

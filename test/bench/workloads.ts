import type { GenerateLibrarySpec } from '../double/index.js';

export type Mode = 'quick' | 'full';

const KB = 1_000;
const MB = 1_000_000;
export const GiB = 1024 ** 3;

export interface Workload {
  name: 'small' | 'photos' | 'videos' | 'pipeline' | 'resume-photos' | 'resume-videos';
  /** What the table calls it, e.g. "5,000 small files (20–100 KB)". */
  label: string;
  library: GenerateLibrarySpec;
}

function workload(
  name: Workload['name'],
  label: string,
  library: Omit<GenerateLibrarySpec, 'seed'>,
): Workload {
  return { name, label, library: { seed: `bench-${name}`, ...library } };
}

/** The three backup workloads: many small files, phone photos, videos. */
export function backupWorkloads(mode: Mode): Workload[] {
  const quick = mode === 'quick';
  const small = quick ? 1_000 : 5_000;
  const photos = quick ? 200 : 2_000;
  const videos = quick ? 3 : 20;
  const videoSizes = quick ? ([50 * MB, 100 * MB] as const) : ([50 * MB, 500 * MB] as const);
  return [
    workload('small', `${small.toLocaleString('en-US')} small files, 20–100 KB`, {
      counts: { image: { upload: small } },
      sizes: { image: [20 * KB, 100 * KB] },
    }),
    workload('photos', `${photos.toLocaleString('en-US')} photos, 0.2–8 MB`, {
      counts: { image: { upload: photos } },
      sizes: { image: [200 * KB, 8 * MB] },
    }),
    workload('videos', `${videos} videos, ${videoSizes[0] / MB}–${videoSizes[1] / MB} MB`, {
      counts: { video: { upload: videos } },
      sizes: { video: videoSizes },
    }),
  ];
}

/** Smaller (moto is slow) and spread over several listings, private assets included. */
export function pipelineWorkload(mode: Mode): Workload {
  const quick = mode === 'quick';
  const docs = quick ? 100 : 600;
  const photos = quick ? 24 : 150;
  const privatePhotos = quick ? 6 : 30;
  const videos = quick ? 1 : 2;
  return workload(
    'pipeline',
    `${docs} docs 20–100 KB, ${photos + privatePhotos} photos 0.2–8 MB (${privatePhotos} private), ${videos} video${videos > 1 ? 's' : ''} 50–100 MB`,
    {
      counts: {
        raw: { upload: docs },
        image: { upload: photos, private: privatePhotos },
        video: { upload: videos },
      },
      sizes: { raw: [20 * KB, 100 * KB], image: [200 * KB, 8 * MB], video: [50 * MB, 100 * MB] },
    },
  );
}

/**
 * Two libraries for the kill -9 test: one where the kill lands among photos, one where it lands in
 * the middle of large videos (a few photos are listed first).
 */
export function resumeWorkloads(mode: Mode): Workload[] {
  const quick = mode === 'quick';
  const photos = quick ? 150 : 600;
  const videoPhotos = quick ? 20 : 40;
  const videos = quick ? 2 : 4;
  const videoSizes = quick ? ([100 * MB, 150 * MB] as const) : ([200 * MB, 400 * MB] as const);
  return [
    workload('resume-photos', `${photos} photos 0.2–8 MB`, {
      counts: { image: { upload: photos } },
      sizes: { image: [200 * KB, 8 * MB] },
    }),
    workload(
      'resume-videos',
      `${videoPhotos} photos, ${videos} videos ${videoSizes[0] / MB}–${videoSizes[1] / MB} MB`,
      {
        counts: { image: { upload: videoPhotos }, video: { upload: videos } },
        sizes: { image: [200 * KB, 8 * MB], video: videoSizes },
      },
    ),
  ];
}

export interface MemoryCase {
  name: string;
  label: string;
  /** Sizes of the assets replicated at once. */
  assets: number[];
  /** Peak RSS allowed for the case, bytes; undefined when the case has no target. */
  peakTarget?: number;
  /** RSS growth allowed over the warm baseline, bytes. */
  growthTarget?: number;
}

export function memoryCases(mode: Mode): MemoryCase[] {
  const MiB = 1024 * 1024;
  const one: MemoryCase = {
    name: 'one-1GiB',
    label: 'one 1 GiB asset',
    assets: [GiB],
    growthTarget: 200 * MiB,
  };
  if (mode === 'quick') {
    return [one, { name: 'ten-40MB', label: '10 × 40 MB in parallel', assets: Array(10).fill(40 * MB) }];
  }
  return [
    one,
    { name: 'one-2GiB', label: 'one 2 GiB asset', assets: [2 * GiB], peakTarget: 256 * MiB },
    { name: 'ten-500MB', label: '10 × 500 MB in parallel', assets: Array(10).fill(500 * MB) },
  ];
}

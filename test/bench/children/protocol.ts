import type { SourceAsset } from '../../../shared/types.js';

/** CPU time a child spent, in seconds. */
export interface CpuSeconds {
  user: number;
  system: number;
}

export interface BaselineJob {
  urls: string[];
  dest: string;
  concurrency: number;
}

export interface BaselineS3Job {
  urls: string[];
  /** moto's endpoint and a bucket there. */
  endpoint: string;
  bucket: string;
  concurrency: number;
}

export interface BackupJob {
  cloudinaryUrl: string;
  dest: string;
  /** Downloads at once; `npm run backup`'s default when undefined. */
  concurrency?: number;
}

export interface ReplicateJob {
  cloudinaryUrl: string;
  /** moto's endpoint, or undefined to write into `dest` (a local folder store). */
  awsEndpoint?: string;
  bucket: string;
  table: string;
  dest: string;
  /** Copied first, before the baseline RSS is taken, so every module and client is warm. */
  warmup: SourceAsset;
  assets: SourceAsset[];
}

export type TransferDone = {
  kind: 'done';
  seconds: number;
  files: number;
  bytes: number;
  cpu: CpuSeconds;
  /** Peak RSS the kernel saw for the process (VmHWM), bytes. */
  peakRss: number;
  failed: number;
  /** Assets listed but not copied (a no-change run). */
  unchanged?: number;
};

export type ChildMessage = TransferDone | { kind: 'ready'; rss: number } | { kind: 'error'; message: string };

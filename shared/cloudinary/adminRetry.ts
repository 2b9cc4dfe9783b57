import { RetryableError } from '../errors.js';

/** How transient Admin API failures (5xx, resets, timeouts) are retried within one call. */
export interface AdminRetryPolicy {
  /** Tries of one Admin call before the API counts as down (default 8). */
  tries: number;
  /** First backoff delay (default 1 s); doubles with every try. */
  baseMs: number;
  /** Longest single delay (default 30 s). */
  maxMs: number;
  /** Waits `ms`; injected so tests never depend on wall-clock time. */
  sleep: (ms: number) => Promise<void>;
  /** 0..1; injected for deterministic tests. */
  random: () => number;
}

export const DEFAULT_ADMIN_RETRY: AdminRetryPolicy = {
  tries: 8,
  baseMs: 1_000,
  maxMs: 30_000,
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  random: Math.random,
};

/** Exponential backoff with jitter in the upper half, so many clients never retry in step. */
export function adminBackoffMs(
  policy: Pick<AdminRetryPolicy, 'baseMs' | 'maxMs' | 'random'>,
  retry: number,
): number {
  const cap = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, retry - 1));
  return Math.round(cap / 2 + policy.random() * (cap / 2));
}

/**
 * The Admin API kept failing through every retry: the run stops (its checkpoint kept) and says so;
 * the next run continues from the checkpoint.
 */
export class AdminApiDownError extends RetryableError {
  /** Admin calls spent on the tries. */
  readonly calls: number;
  constructor(what: string, tries: number, last: string) {
    super(
      `${what}: Cloudinary's Admin API kept failing (${tries === 1 ? 'one try' : `${tries} tries with backoff`}); last error: ${last}. ` +
        'Nothing listed so far is lost: run again later and it continues from its checkpoint.',
    );
    this.calls = tries;
  }
}

/** A failing Admin call was not retried because the invocation's deadline came first. */
export class AdminRetryOutOfTimeError extends RetryableError {
  constructor(what: string, last: string) {
    super(`${what}: ${last}; no time left before the deadline to retry it`);
  }
}

import { dispositionOf } from '../errors.js';

/** Failure names every AWS service may use for a passing problem. */
const COMMON_TRANSIENT = ['ThrottlingException', 'ServiceUnavailable', 'InternalError', 'TimeoutError'];

export function errorName(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null ? (error as { name?: string }).name : undefined;
}

/** Throttling, 5xx and network trouble; `serviceNames` adds a service's own throttling names. */
export function isTransientAwsError(error: unknown, serviceNames: readonly string[] = []): boolean {
  const e = error as {
    name?: string;
    code?: unknown;
    $fault?: string;
    $retryable?: unknown;
    $metadata?: { httpStatusCode?: number };
  };
  const name = e?.name ?? '';
  if (COMMON_TRANSIENT.includes(name) || serviceNames.includes(name)) return true;
  if (e?.$retryable || e?.$fault === 'server') return true;
  const status = e?.$metadata?.httpStatusCode ?? 0;
  if (status >= 500 || status === 429) return true;
  // Socket errors carry a code and no HTTP status; dispositionOf knows which codes are transient.
  return typeof e?.code === 'string' && dispositionOf(error) === 'retry';
}

/** Exponential backoff with jitter in the upper half, capped at 5 s. */
export function backoff(baseMs: number, retry: number): number {
  const cap = Math.min(5_000, baseMs * 2 ** retry);
  return cap / 2 + Math.random() * (cap / 2);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** What to do with a failure, rclone-style: classified by handling, not by origin. */
export type Disposition = 'retry' | 'gone' | 'permanent' | 'fatal';

export class ReplicatorError extends Error {
  readonly disposition: Disposition;
  constructor(message: string, disposition: Disposition, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.disposition = disposition;
  }
}

/** Network trouble, timeouts, 5xx, throttling: try again later. */
export class RetryableError extends ReplicatorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'retry', options);
  }
}

/** The Admin API budget is spent until `resetAt`. */
export class RateLimitedError extends RetryableError {
  readonly resetAt: Date;
  constructor(message: string, resetAt: Date, options?: { cause?: unknown }) {
    super(message, options);
    this.resetAt = resetAt;
  }
}

/** The asset no longer exists at the source. */
export class AssetGoneError extends ReplicatorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'gone', options);
  }
}

/** The bytes received are not the bytes the source described. Retried, then dead-lettered. */
export class IntegrityError extends ReplicatorError {
  constructor(message: string) {
    super(message, 'retry');
  }
}

/** This asset cannot be copied by any path we know (e.g. a restricted type). */
export class PermanentAssetError extends ReplicatorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'permanent', options);
  }
}

/** The whole run cannot go on: bad credentials, a missing bucket or table. */
export class FatalError extends ReplicatorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'fatal', options);
  }
}

/** Bad configuration: the message says which setting and how to fix it. */
export class ConfigError extends FatalError {}

/** A run record changed since it was read (optimistic lock): read it again and redo the change. */
export class StaleRunError extends ReplicatorError {
  readonly runId: string;
  constructor(runId: string, options?: { cause?: unknown }) {
    super(`run ${runId} was changed by someone else since it was read; read it again`, 'retry', options);
    this.runId = runId;
  }
}

/** Why a copy that passed its size check is copied again: the etag Cloudinary now gives differs. */
export function etagMismatch(md5: string | undefined, etag: string): string {
  return `the copy's MD5 ${md5 ?? '(unknown)'} does not match Cloudinary's etag ${etag}: copying it again`;
}

const RETRYABLE_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENOTFOUND',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

const FATAL_AWS_NAMES = new Set([
  'NoSuchBucket',
  'ResourceNotFoundException',
  'AccessDenied',
  'AccessDeniedException',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'UnrecognizedClientException',
  'QueueDoesNotExist',
  'AWS.SimpleQueueService.NonExistentQueue',
  'ExpiredToken',
]);

/** Decides what to do with any thrown value: our own errors, AWS SDK errors, socket errors. */
export function dispositionOf(error: unknown): Disposition {
  if (error instanceof ReplicatorError) return error.disposition;
  if (typeof error !== 'object' || error === null) return 'retry';
  const e = error as {
    name?: string;
    code?: string;
    $metadata?: { httpStatusCode?: number };
    cause?: unknown;
  };
  if (e.name && FATAL_AWS_NAMES.has(e.name)) return 'fatal';
  if (e.code && RETRYABLE_CODES.has(e.code)) return 'retry';
  const status = e.$metadata?.httpStatusCode;
  if (status === 403) return 'fatal';
  if (e.cause && e.cause !== error) return dispositionOf(e.cause);
  return 'retry';
}

/** A one-line description of any thrown value that never carries credentials. */
export function describeError(error: unknown): string {
  const raw =
    error instanceof Error
      ? `${error.name}: ${error.message}`
      : typeof error === 'object' && error !== null && 'message' in error
        ? String((error as { message: unknown }).message)
        : String(error);
  return redactSecrets(raw);
}

/** Removes anything that looks like a credential from a message. */
export function redactSecrets(text: string): string {
  return text
    .replace(/cloudinary:\/\/[^@\s]*@/giu, 'cloudinary://***@')
    .replace(/(signature|api_secret|X-Amz-Signature|X-Amz-Credential|auth)=([^&\s"']+)/giu, '$1=***')
    .replace(/\/s--[A-Za-z0-9_-]{8,}--\//gu, '/s--***--/');
}

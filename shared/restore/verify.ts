import type { RestoreOutcome } from './types.js';
import type { UploadAnswer } from './uploadAsset.js';

/** What one upload proved. */
export interface Verdict {
  outcome: Extract<RestoreOutcome, 'restored' | 'already-there' | 'skipped' | 'failed'>;
  reason?: string;
}

/**
 * Judges the Upload API's answer against the backed-up MD5 and size. With `overwrite=false` an
 * existing asset comes back unchanged: flagged `existing: true`, or (the docs do not promise the flag)
 * recognisable by an etag that is not the one of the bytes just sent. Either way: the same bytes are
 * already there (verified), or other bytes are (skipped, never replaced without --overwrite).
 */
export function judgeAnswer(
  result: { answer: UploadAnswer; readMd5: string; readBytes: number },
  expected: { md5?: string; bytes: number },
  overwrite: boolean,
): Verdict {
  const { answer, readMd5, readBytes } = result;
  const md5 = expected.md5 ?? readMd5;
  if (readBytes !== expected.bytes || readMd5 !== md5) {
    return {
      outcome: 'failed',
      reason: `the backup copy is damaged: read ${readBytes} bytes with MD5 ${readMd5}, expected ${expected.bytes} bytes with MD5 ${md5}`,
    };
  }
  if (answer.etag === undefined) {
    return {
      outcome: 'failed',
      reason: 'Cloudinary answered without an etag: the upload cannot be verified',
    };
  }
  const same = answer.etag === md5 && answer.bytes === expected.bytes;
  if (answer.existing || (!overwrite && answer.etag !== readMd5)) {
    return same
      ? { outcome: 'already-there', reason: 'already at the target with the backed-up bytes' }
      : {
          outcome: 'skipped',
          reason: `exists at the target with other content (version ${answer.version}, ${answer.bytes} bytes); --overwrite replaces it`,
        };
  }
  if (same) return { outcome: 'restored' };
  return {
    outcome: 'failed',
    reason: `Cloudinary's answer does not match the backup: etag ${answer.etag}, ${answer.bytes} bytes; expected ${md5}, ${expected.bytes} bytes`,
  };
}

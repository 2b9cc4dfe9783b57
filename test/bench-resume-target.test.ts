import { describe, expect, it } from 'vitest';
import { resumeFailure } from './bench/resume.js';

describe('the bench reports a half-way resume waste as met only when the rerun finished the library', () => {
  const finished = { stalled: false, differences: [], servedSecondRun: 1_000_000 };

  it('a rerun that completed the library counts', () => {
    expect(resumeFailure(finished)).toBe('');
  });

  it('a rerun that fetched nothing, left assets missing or stalled does not count', () => {
    expect(resumeFailure({ ...finished, servedSecondRun: 0 })).toBe(' (the second run fetched nothing)');
    expect(resumeFailure({ ...finished, differences: ['missing video/upload/a.mp4'] })).toBe(
      ' (the second run left 1 asset missing or wrong)',
    );
    expect(resumeFailure({ ...finished, stalled: true })).toBe(' (the second run stalled)');
  });
});

import { describe, expect, it } from 'vitest';
import { formatBytes, formatDuration, ProgressReporter, type ProgressMode } from '../shared/progress.js';

function harness(mode: ProgressMode | undefined, isTTY = false) {
  let now = 0;
  const written: string[] = [];
  const reporter = new ProgressReporter({
    stream: { write: (chunk: string) => written.push(chunk), isTTY, columns: 100 },
    mode,
    label: 'pull',
    now: () => now,
    timer: false,
  });
  return { reporter, written, advance: (ms: number) => (now += ms) };
}

describe('progress reporter', () => {
  it('redraws one line in place on a terminal with files, bytes, rate and ETA', () => {
    const { reporter, written, advance } = harness(undefined, true);
    reporter.setTotals({ files: 4, bytes: 4 * 1024 * 1024 });

    reporter.fileDone();
    advance(1000);
    reporter.addBytes(1024 * 1024);

    const last = written.at(-1) ?? '';
    expect(reporter.mode).toBe('tty');
    expect(last.startsWith('\r\u001b[2K')).toBe(true);
    expect(last).not.toContain('\n');
    expect(last).toContain('1/4 files');
    expect(last).toContain('1.0 MiB/4.0 MiB');
    expect(last).toContain('1.0 MiB/s');
    expect(last).toContain('ETA 3s');
    expect(last).toMatch(/\[#+-+\]/u);
  });

  it('prints messages above the bar and leaves the terminal on a clean line', () => {
    const { reporter, written, advance } = harness('tty');
    reporter.setTotals({ files: 1, bytes: 10 });
    advance(500);
    reporter.addBytes(5);

    reporter.message('failed x: boom');
    reporter.stop();

    const text = written.join('');
    expect(text).toContain('\r\u001b[2Kfailed x: boom\n');
    expect(text.endsWith('\n')).toBe(true);
  });

  it('writes plain status lines now and then when piped', () => {
    const { reporter, written, advance } = harness(undefined, false);
    reporter.setTotals({ files: 2, bytes: 2000 });

    reporter.addBytes(100);
    advance(10_000);
    reporter.addBytes(100);
    reporter.message('downloaded a.jpg');

    expect(reporter.mode).toBe('plain');
    expect(written).toEqual([
      expect.stringMatching(/^pull 0\/2 files {2}200 B\/2\.0 KiB {2}\d+ B\/s.*\n$/u),
      'downloaded a.jpg\n',
    ]);
    expect(written.join('')).not.toContain('\r');
  });

  it('emits JSON lines for scripts', () => {
    const { reporter, written, advance } = harness('json');
    reporter.setTotals({ files: 1, bytes: 100 });
    advance(1500);
    reporter.addBytes(100);
    reporter.fileDone();

    reporter.event('file', { key: 'k', action: 'downloaded' });
    reporter.message('note', { key: 'k' });
    reporter.stop();

    const events = written.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(events.map((e) => e.event)).toEqual(['progress', 'file', 'message', 'progress']);
    expect(events.at(-1)).toMatchObject({ files: 1, totalFiles: 1, bytes: 100, totalBytes: 100 });
    expect(events[2]).toEqual({ event: 'message', message: 'note', key: 'k' });
  });

  it('counts resumed bytes as done without inflating the rate', () => {
    const { reporter, advance } = harness('quiet');
    reporter.setTotals({ bytes: 1000 });

    reporter.addDoneBytes(900);
    advance(2000);
    reporter.addBytes(50);

    expect(reporter.snapshot()).toMatchObject({ bytes: 950, rate: 25, etaSeconds: 2 });
  });

  it('formats sizes and durations for people', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(5 * 1024 ** 3)).toBe('5.0 GiB');
    expect(formatDuration(4.2)).toBe('4s');
    expect(formatDuration(62)).toBe('1m02s');
    expect(formatDuration(3700)).toBe('1h01m');
  });
});

/** How progress is shown: a redrawn bar, occasional plain lines, JSON lines, or nothing. */
export type ProgressMode = 'tty' | 'plain' | 'json' | 'quiet';

export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  stream: ProgressStream;
  /** Defaults to 'tty' when the stream is a terminal, else 'plain'. */
  mode?: ProgressMode;
  /** Word before the numbers: `pull`, `backup`. */
  label?: string;
  /** Milliseconds clock (tests). */
  now?: () => number;
  /** Minimum time between redraws of the TTY bar. */
  redrawMs?: number;
  /** Time between status lines in plain mode. */
  plainEveryMs?: number;
  /** Time between `progress` events in JSON mode. */
  jsonEveryMs?: number;
  /** Window over which the rate is averaged. */
  rateWindowMs?: number;
  /** Redraw on a timer too, so the rate decays during a stall (off in tests). */
  timer?: boolean;
}

export interface ProgressSnapshot {
  files: number;
  totalFiles?: number;
  bytes: number;
  totalBytes?: number;
  /** Bytes per second over the recent window. */
  rate: number;
  /** Seconds left at the current rate, when it can be told. */
  etaSeconds?: number;
  elapsedMs: number;
}

/**
 * Shows the progress of a transfer for people and for scripts alike. On a terminal: one line
 * redrawn in place with files, bytes, rate and ETA. Piped: a plain status line every few
 * seconds. With `--json`: one JSON object per line (`progress`, `message`, and whatever events the command adds).
 */
export class ProgressReporter {
  readonly mode: ProgressMode;
  private readonly stream: ProgressStream;
  private readonly label: string;
  private readonly now: () => number;
  private readonly options: Required<
    Pick<ProgressOptions, 'redrawMs' | 'plainEveryMs' | 'jsonEveryMs' | 'rateWindowMs'>
  >;
  private readonly started: number;
  private files = 0;
  private bytes = 0;
  private totalFiles?: number;
  private totalBytes?: number;
  private samples: { at: number; bytes: number }[] = [];
  private transferred = 0;
  private lastDraw = 0;
  private barShown = false;
  private statusText?: string;
  private stopped = false;
  private timer?: NodeJS.Timeout;

  constructor(options: ProgressOptions) {
    this.stream = options.stream;
    this.mode = options.mode ?? (options.stream.isTTY ? 'tty' : 'plain');
    this.label = options.label ?? '';
    this.now = options.now ?? Date.now;
    this.options = {
      redrawMs: options.redrawMs ?? 100,
      plainEveryMs: options.plainEveryMs ?? 10_000,
      jsonEveryMs: options.jsonEveryMs ?? 1_000,
      rateWindowMs: options.rateWindowMs ?? 10_000,
    };
    this.started = this.now();
    this.lastDraw = this.started;
    this.samples.push({ at: this.started, bytes: 0 });
    if (this.mode === 'tty' && (options.timer ?? true)) {
      this.timer = setInterval(() => this.draw(true), 1_000);
      this.timer.unref();
    }
  }

  /** Sets (or raises) what the whole job amounts to, for the bar and the ETA. */
  setTotals(totals: { files?: number; bytes?: number }): void {
    if (totals.files !== undefined) this.totalFiles = totals.files;
    if (totals.bytes !== undefined) this.totalBytes = totals.bytes;
    this.draw(false);
  }

  /** Bytes moved just now: count toward the done amount and the rate. */
  addBytes(count: number): void {
    this.bytes += count;
    this.transferred += count;
    this.draw(false);
  }

  /** Bytes already there (a resumed prefix): done, but not part of the rate. */
  addDoneBytes(count: number): void {
    this.bytes += count;
    this.draw(false);
  }

  /** Takes back bytes of a transfer that failed and will start over. */
  removeBytes(count: number): void {
    this.bytes = Math.max(0, this.bytes - count);
  }

  /** One more file finished. */
  fileDone(): void {
    this.files += 1;
    this.draw(false);
  }

  /** A transient status shown in place of the bar on a terminal (`listing… 3,000 objects`); undefined clears it. */
  status(text: string | undefined): void {
    this.statusText = text;
    if (this.mode === 'tty') this.draw(text === undefined);
  }

  /** A line for people (or a `message` event in JSON mode), printed above the bar. */
  message(text: string, fields: Record<string, unknown> = {}): void {
    if (this.mode === 'quiet') return;
    if (this.mode === 'json') {
      this.writeJson({ event: 'message', message: text, ...fields });
      return;
    }
    this.clearBar();
    this.stream.write(`${text}\n`);
    this.draw(true);
  }

  /** A structured event: one JSON line in JSON mode, nothing otherwise. */
  event(name: string, fields: Record<string, unknown>): void {
    if (this.mode === 'json') this.writeJson({ event: name, ...fields });
  }

  snapshot(): ProgressSnapshot {
    const at = this.now();
    const rate = this.rate(at);
    const remaining = this.totalBytes === undefined ? undefined : Math.max(0, this.totalBytes - this.bytes);
    return {
      files: this.files,
      totalFiles: this.totalFiles,
      bytes: this.bytes,
      totalBytes: this.totalBytes,
      rate,
      etaSeconds: remaining === undefined || rate <= 0 ? undefined : remaining / rate,
      elapsedMs: at - this.started,
    };
  }

  /** Stops the timer and leaves the terminal on a clean line; a last `progress` event in JSON mode. */
  stop(): void {
    if (this.stopped) return;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.mode === 'tty') {
      if (this.barShown && this.statusText === undefined) this.draw(true);
      else this.clearBar();
      if (this.barShown) this.stream.write('\n');
      this.barShown = false;
    } else if (this.mode === 'json') {
      this.writeJson({ event: 'progress', ...this.snapshot() });
    }
    this.stopped = true;
  }

  /** The status text: `12/340 files  1.2 GiB/3.4 GiB  45.1 MiB/s  ETA 1m02s`. */
  statusLine(width = 100): string {
    if (this.statusText !== undefined) return this.statusText.slice(0, Math.max(0, width - 1));
    const s = this.snapshot();
    const files = s.totalFiles === undefined ? `${s.files} files` : `${s.files}/${s.totalFiles} files`;
    const bytes =
      s.totalBytes === undefined
        ? formatBytes(s.bytes)
        : `${formatBytes(s.bytes)}/${formatBytes(s.totalBytes)}`;
    const eta = s.etaSeconds === undefined ? '' : `  ETA ${formatDuration(s.etaSeconds)}`;
    const text = `${files}  ${bytes}  ${formatBytes(s.rate)}/s${eta}`;
    const prefix = this.label ? `${this.label} ` : '';
    if (this.mode !== 'tty' || s.totalBytes === undefined || s.totalBytes === 0) return `${prefix}${text}`;
    const barWidth = Math.max(0, Math.min(30, width - text.length - prefix.length - 4));
    if (barWidth < 5) return `${prefix}${text}`.slice(0, Math.max(0, width - 1));
    const filled = Math.round((Math.min(s.bytes, s.totalBytes) / s.totalBytes) * barWidth);
    return `${prefix}[${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}] ${text}`;
  }

  /** Redraws the bar (forced: now) or, piped, writes a line when one is due. */
  private draw(force: boolean): void {
    if (this.mode === 'quiet' || this.stopped) return;
    const at = this.now();
    this.sample(at);
    const since = at - this.lastDraw;
    if (this.mode === 'tty') {
      if (!force && since < this.options.redrawMs) return;
      this.lastDraw = at;
      const columns = this.stream.columns;
      this.stream.write(`\r\u001b[2K${this.statusLine(columns && columns > 0 ? columns : 80)}`);
      this.barShown = true;
      return;
    }
    const every = this.mode === 'json' ? this.options.jsonEveryMs : this.options.plainEveryMs;
    if (since < every) return;
    this.lastDraw = at;
    if (this.mode === 'json') this.writeJson({ event: 'progress', ...this.snapshot() });
    else this.stream.write(`${this.statusLine()}\n`);
  }

  private clearBar(): void {
    if (this.mode === 'tty' && this.barShown) {
      this.stream.write('\r\u001b[2K');
      this.barShown = false;
    }
  }

  private sample(at: number): void {
    const last = this.samples.at(-1);
    if (last && at - last.at < 250) {
      last.bytes = this.transferred;
    } else {
      this.samples.push({ at, bytes: this.transferred });
    }
    const horizon = at - this.options.rateWindowMs;
    while (this.samples.length > 2 && (this.samples[1]?.at ?? at) <= horizon) this.samples.shift();
  }

  private rate(at: number): number {
    this.sample(at);
    const first = this.samples[0];
    if (!first) return 0;
    const span = (at - first.at) / 1000;
    return span > 0 ? (this.transferred - first.bytes) / span : 0;
  }

  private writeJson(value: Record<string, unknown>): void {
    this.stream.write(`${JSON.stringify(value)}\n`);
  }
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 1536 → `1.5 KiB`. */
export function formatBytes(bytes: number): string {
  let value = Math.max(0, bytes);
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

/** 62 → `1m02s`, 3700 → `1h01m`, 4.2 → `4s`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const total = Math.max(0, Math.round(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m${String(s).padStart(2, '0')}s`;
  return `${s}s`;
}

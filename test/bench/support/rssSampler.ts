import { procStatusBytes } from '../children/util.js';

/** Samples another process's resident set every `intervalMs` until stopped. */
export class RssSampler {
  private timer: NodeJS.Timeout | undefined;
  private peakBytes = 0;
  private samples = 0;

  constructor(
    private readonly pid: number,
    private readonly intervalMs = 50,
  ) {}

  start(): this {
    const sample = (): void => {
      const rss = procStatusBytes(this.pid, 'VmRSS');
      if (rss > 0) {
        this.samples += 1;
        this.peakBytes = Math.max(this.peakBytes, rss);
      }
    };
    sample();
    this.timer = setInterval(sample, this.intervalMs);
    return this;
  }

  /** The highest RSS sampled, bytes, and how many samples were taken. */
  stop(): { peak: number; samples: number } {
    clearInterval(this.timer);
    return { peak: this.peakBytes, samples: this.samples };
  }
}

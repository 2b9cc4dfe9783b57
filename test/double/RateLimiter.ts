import { hourWindow, startOfNextHour } from './time.js';

export interface RateLimitVerdict {
  allowed: boolean;
  limit: number;
  remaining: number;
  resetAt: Date;
}

/** One hourly budget for every Admin API call, windows aligned on the clock's hours. */
export class RateLimiter {
  #window = Number.NaN;
  #used = 0;

  constructor(
    private readonly now: () => Date,
    public limit: number,
  ) {}

  /** Spends one call if any is left. */
  take(): RateLimitVerdict {
    const verdict = this.peek();
    if (!verdict.allowed) return verdict;
    this.#used += 1;
    return { ...verdict, remaining: this.limit - this.#used };
  }

  peek(): RateLimitVerdict {
    const nowMs = this.now().getTime();
    const window = hourWindow(nowMs);
    if (window !== this.#window) {
      this.#window = window;
      this.#used = 0;
    }
    const remaining = Math.max(0, this.limit - this.#used);
    return { allowed: remaining > 0, limit: this.limit, remaining, resetAt: startOfNextHour(nowMs) };
  }
}

import type { DoubleClock } from './types.js';

/** The double's clock: a base clock shifted by `advance`/`set`, so tests can move through hours. */
export class SettableClock implements DoubleClock {
  #offsetMs = 0;

  constructor(private readonly base: () => Date = () => new Date()) {}

  now(): Date {
    return new Date(this.base().getTime() + this.#offsetMs);
  }

  advance(ms: number): void {
    this.#offsetMs += ms;
  }

  set(date: Date): void {
    this.#offsetMs = date.getTime() - this.base().getTime();
  }
}

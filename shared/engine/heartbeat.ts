export interface Heartbeat {
  /** Stops the beats and waits for one in progress. */
  stop(): Promise<void>;
}

/**
 * Calls `beat` every `intervalMs` until stopped; beats never overlap, and the timer does not keep
 * the process alive on its own.
 */
export function startHeartbeat(intervalMs: number, beat: () => Promise<void>): Heartbeat {
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  const schedule = () => {
    timer = setTimeout(() => {
      running = beat()
        .catch(() => undefined)
        .finally(() => {
          if (!stopped) schedule();
        });
    }, intervalMs);
    timer.unref();
  };
  schedule();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}

/** A third of the in-flight time: two beats may be lost before the work is given back. */
export function heartbeatIntervalMs(inFlightSeconds: number): number {
  return Math.max(250, Math.floor((inFlightSeconds * 1000) / 3));
}

import type { Mode } from './workloads.js';

/** What every section gets: the mode, a progress log (stderr) and lazily shared measurements. */
export interface BenchContext {
  mode: Mode;
  log(message: string): void;
  /** Child processes write V8 CPU profiles here (`--profile`). */
  profileDir?: string;
  /** A measurement several sections use is taken once per bench run. */
  shared<T>(key: string, measure: () => Promise<T>): Promise<T>;
}

export function createContext(mode: Mode, profileDir: string | undefined): BenchContext {
  const cache = new Map<string, Promise<unknown>>();
  const started = performance.now();
  return {
    mode,
    profileDir,
    log(message) {
      const at = ((performance.now() - started) / 1000).toFixed(0).padStart(4);
      process.stderr.write(`[bench ${at}s] ${message}\n`);
    },
    shared<T>(key: string, measure: () => Promise<T>): Promise<T> {
      let value = cache.get(key) as Promise<T> | undefined;
      if (value === undefined) {
        value = measure();
        cache.set(key, value);
      }
      return value;
    },
  };
}

/** Extra `node` flags for a child: a CPU profile per child when profiling. */
export function profileFlags(context: BenchContext, label: string): string[] {
  return context.profileDir
    ? [
        '--cpu-prof',
        `--cpu-prof-dir=${context.profileDir}`,
        `--cpu-prof-name=${label}-${Date.now()}.cpuprofile`,
      ]
    : [];
}

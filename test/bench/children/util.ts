import { readFileSync } from 'node:fs';
import type { CpuSeconds } from './protocol.js';

/** VmHWM (peak resident set) of this process, in bytes; 0 where /proc is missing. */
export function peakRss(): number {
  return procStatusBytes('self', 'VmHWM');
}

/** A `kB` field of /proc/<pid>/status in bytes; 0 when unreadable (process gone, not Linux). */
export function procStatusBytes(pid: number | 'self', field: 'VmHWM' | 'VmRSS'): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'mu').exec(status);
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

export function cpuSince(start: NodeJS.CpuUsage): CpuSeconds {
  const used = process.cpuUsage(start);
  return { user: used.user / 1e6, system: used.system / 1e6 };
}

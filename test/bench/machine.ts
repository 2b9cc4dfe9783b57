import { cpus, loadavg, release, totalmem } from 'node:os';

export interface Machine {
  cpu: string;
  /** Logical CPUs the OS reports. */
  cores: number;
  ramGiB: number;
  node: string;
  platform: string;
  loadAverage: { start: number[]; end: number[] };
}

export function loadAverage(): number[] {
  return loadavg().map((value) => Math.round(value * 100) / 100);
}

export function describeMachine(): Machine {
  const list = cpus();
  return {
    cpu: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    ramGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    platform: `${process.platform} ${release()} ${process.arch}`,
    loadAverage: { start: loadAverage(), end: [] },
  };
}

export function machineLines(machine: Machine): string[] {
  return [
    `Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.ramGiB} GiB RAM, ${machine.platform}`,
    `Node ${machine.node}; load average (1/5/15 min) at start ${machine.loadAverage.start.join(' ')}` +
      (machine.loadAverage.end.length > 0 ? `, at end ${machine.loadAverage.end.join(' ')}` : ''),
  ];
}

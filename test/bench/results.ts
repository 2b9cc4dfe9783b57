import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Machine } from './machine.js';
import { num, pct, type Table } from './table.js';
import type { Mode } from './workloads.js';

export const SECTION_NAMES = [
  'throughput',
  'memory',
  'economy',
  'resume',
  'dailyRun',
  'cost',
  'cold-start',
] as const;
export type SectionName = (typeof SECTION_NAMES)[number];

/** One figure that later runs are compared on. */
export interface Metric {
  key: string;
  label: string;
  value: number;
  unit: string;
  better: 'higher' | 'lower';
}

/** A target of the issue and where this run stands. */
export interface TargetCheck {
  target: string;
  measured: string;
  /** Undefined when this run could not tell (not measured in this mode). */
  met: boolean | undefined;
}

export interface SectionResult {
  name: SectionName;
  tables: Table[];
  metrics: Metric[];
  targets: TargetCheck[];
  /** The raw measurements, for the JSON file. */
  data: unknown;
}

export interface BenchResults {
  schema: 1;
  mode: Mode;
  startedAt: string;
  finishedAt: string;
  durationSeconds: number;
  machine: Machine;
  sections: Partial<Record<SectionName, { metrics: Metric[]; targets: TargetCheck[]; data: unknown }>>;
}

export const RESULTS_DIR = 'bench-results';

/** Writes `bench-results/<timestamp>.json` and `bench-results/latest.json`; returns the first path. */
export async function saveResults(root: string, results: BenchResults): Promise<string> {
  const dir = join(root, RESULTS_DIR);
  await mkdir(dir, { recursive: true });
  const text = `${JSON.stringify(results, null, 2)}\n`;
  const file = join(dir, `${results.startedAt.replace(/[:.]/gu, '-')}.json`);
  await writeFile(file, text);
  await writeFile(join(dir, 'latest.json'), text);
  return file;
}

async function readResults(file: string): Promise<BenchResults | undefined> {
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as BenchResults;
    return parsed.schema === 1 ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Earlier runs of this mode, newest first: `latest.json` and the timestamped files (a quick run is
 * never compared with a full one).
 */
export async function earlierResults(root: string, mode: Mode): Promise<BenchResults[]> {
  const dir = join(root, RESULTS_DIR);
  const names = (await readdir(dir).catch(() => [] as string[]))
    .filter((name) => /^\d{4}-.*\.json$/u.test(name))
    .sort()
    .reverse();
  const runs: BenchResults[] = [];
  for (const name of ['latest.json', ...names]) {
    const run = await readResults(join(dir, name));
    if (run?.mode === mode && !runs.some((r) => r.startedAt === run.startedAt)) runs.push(run);
  }
  return runs;
}

/**
 * Every metric of this run next to its most recent earlier value (runs with `--only` measure some
 * sections only); a change for the worse by more than 10% is flagged.
 */
export function deltaTable(earlier: BenchResults[], current: BenchResults): Table | undefined {
  const before = new Map<string, { metric: Metric; run: BenchResults }>();
  for (const run of earlier) {
    for (const section of Object.values(run.sections)) {
      for (const metric of section?.metrics ?? []) {
        if (!before.has(metric.key)) before.set(metric.key, { metric, run });
      }
    }
  }
  const rows: string[][] = [];
  const runsUsed = new Set<BenchResults>();
  for (const section of Object.values(current.sections)) {
    for (const metric of section?.metrics ?? []) {
      const old = before.get(metric.key);
      if (!old) continue;
      runsUsed.add(old.run);
      const was = old.metric.value;
      const change = was === 0 ? (metric.value === 0 ? 0 : Infinity) : metric.value / was - 1;
      const worse = metric.better === 'higher' ? change < -0.1 : change > 0.1;
      const better = metric.better === 'higher' ? change > 0.1 : change < -0.1;
      rows.push([
        metric.label,
        `${num(was, 2)} ${metric.unit}`.trim(),
        `${num(metric.value, 2)} ${metric.unit}`.trim(),
        Number.isFinite(change) ? `${change >= 0 ? '+' : ''}${pct(change, 1)}` : 'new',
        worse ? 'worse' : better ? 'better' : '',
      ]);
    }
  }
  if (rows.length === 0) return undefined;
  return {
    title: `Compared with earlier ${current.mode} runs (each figure with its most recent value)`,
    head: ['Metric', 'Last', 'Now', 'Change', ''],
    rows,
    notes: [
      ...[...runsUsed].map(
        (run) =>
          `Earlier run ${run.startedAt}: load average ${run.machine.loadAverage.start.join(' ')} at its start.`,
      ),
      '"worse"/"better": a change of more than 10% either way; the load of a shared machine moves these figures too.',
    ],
  };
}

import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { readCloudAssembly, synthesize, type DeployedFunction } from '../support/cloudAssembly.js';
import { PROJECT_NODE } from '../support/lambdaProcess.js';
import type { BenchContext } from './context.js';
import type { Metric, SectionResult } from './results.js';
import { childModule } from './support/child.js';
import { makeScratch, removeScratch } from './support/scratch.js';
import { num, type Table } from './table.js';

const PROBE = childModule('coldStartProbe.ts');
const SOURCE_MAPS_FLAG = '--enable-source-maps';

/** What the probe prints: milliseconds, and bytes of memory once the handler is ready. */
export interface ProbeRun {
  /** Node's own start-up, before the handler module is imported. */
  nodeStartMs: number;
  /** Importing the bundle: reading, compiling and running its top level, up to a callable handler. */
  importMs: number;
  /** CPU time of that import (all threads): less sensitive than wall time to other work on the machine. */
  importCpuMs: number;
  /** From the start of the process to the handler being ready. */
  readyMs: number;
  /** Formatting the first stack trace after the import. */
  firstStackMs: number;
  heapUsed: number;
  rss: number;
}

export interface ColdStartCase {
  function: string;
  bundleBytes: number;
  sourceMapBytes: number;
  sourceMaps: boolean;
  /** The NODE_OPTIONS the template sets enable source maps exactly when this case does. */
  asDeployed: boolean;
  runs: ProbeRun[];
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
};

const sizeOf = (path: string): number => {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
};

/** `Enumerate1C43D56D` → `Enumerate`. */
const functionLabel = (fn: DeployedFunction): string => fn.logicalId.replace(/[0-9A-F]{8}$/u, '');

/** The variables Lambda sets, then the template's literal ones (resource names are not needed to start). */
function environmentOf(fn: DeployedFunction, sourceMaps: boolean): NodeJS.ProcessEnv {
  const literal = Object.entries(fn.environment).filter(
    (entry): entry is [string, string] => typeof entry[1] === 'string' && entry[0] !== 'NODE_OPTIONS',
  );
  const nodeOptions = String(fn.environment.NODE_OPTIONS ?? '')
    .split(/\s+/u)
    .filter((flag) => flag && flag !== SOURCE_MAPS_FLAG);
  if (sourceMaps) nodeOptions.push(SOURCE_MAPS_FLAG);
  return {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    LANG: 'en_US.UTF-8',
    TZ: ':UTC',
    ...Object.fromEntries(literal),
    NODE_OPTIONS: nodeOptions.join(' '),
    _HANDLER: fn.handler,
    AWS_EXECUTION_ENV: `AWS_Lambda_${fn.runtime}`,
    AWS_LAMBDA_FUNCTION_NAME: functionLabel(fn),
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memoryMb),
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    LAMBDA_TASK_ROOT: fn.assetDir,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
  };
}

/** One cold start: a fresh process of the project's Node imports the bundle, as Lambda's runtime does. */
async function probe(fn: DeployedFunction, sourceMaps: boolean): Promise<ProbeRun> {
  const child = spawn(PROJECT_NODE, [PROBE], {
    cwd: fn.assetDir,
    env: environmentOf(fn, sourceMaps),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString('utf8')));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', resolve);
  });
  const line = out.split('\n').find((l) => l.startsWith('{"nodeStartMs"'));
  if (code !== 0 || !line) throw new Error(`${fn.logicalId}: the cold-start probe failed (${code}):\n${err}`);
  return JSON.parse(line) as ProbeRun;
}

/**
 * Init duration of each handler bundle from cdk.out: a fresh Node process per run, with and without
 * source maps, the two settings alternating so the load of a shared machine falls on both alike.
 */
export async function measureColdStarts(context: BenchContext, runs: number): Promise<ColdStartCase[]> {
  const outdir = await makeScratch('cold-start');
  try {
    context.log('cold start: cdk synth (bundles the handlers as cdk deploy does)');
    synthesize(outdir);
    const assembly = readCloudAssembly(outdir);
    const cases: ColdStartCase[] = [];
    for (const fn of assembly.functions) {
      const deployedMaps = String(fn.environment.NODE_OPTIONS ?? '').includes(SOURCE_MAPS_FLAG);
      const bundleBytes = sizeOf(join(fn.assetDir, 'index.mjs'));
      const sourceMapBytes = sizeOf(join(fn.assetDir, 'index.mjs.map'));
      const pair = [true, false].map((sourceMaps) => ({
        function: functionLabel(fn),
        bundleBytes,
        sourceMapBytes,
        sourceMaps,
        asDeployed: sourceMaps === deployedMaps,
        runs: [] as ProbeRun[],
      }));
      context.log(`cold start: ${functionLabel(fn)}, ${runs} runs with and without source maps`);
      for (let i = 0; i < runs; i += 1) {
        for (const entry of i % 2 ? [...pair].reverse() : pair) {
          entry.runs.push(await probe(fn, entry.sourceMaps));
        }
      }
      cases.push(...pair);
    }
    return cases;
  } finally {
    await removeScratch(outdir);
  }
}

const kib = (bytes: number): string => (bytes ? `${num(bytes / 1024)} KiB` : '—');

export async function coldStartSection(context: BenchContext): Promise<SectionResult> {
  const runs = context.mode === 'quick' ? 5 : 15;
  const cases = await measureColdStarts(context, runs);
  const table: Table = {
    title: `Cold start — init of each handler bundle from cdk.out, fresh Node ${process.versions.node} per run (median of ${runs}, min)`,
    head: [
      'Function',
      'Bundle',
      'Source map',
      'NODE_OPTIONS',
      'Load + init',
      'CPU',
      'Process start → ready',
      'Heap',
    ],
    rows: cases.map((c) => {
      const pick = (key: keyof ProbeRun) => c.runs.map((r) => r[key]);
      return [
        c.function,
        kib(c.bundleBytes),
        kib(c.sourceMapBytes),
        `${c.sourceMaps ? SOURCE_MAPS_FLAG : '(none)'}${c.asDeployed ? ' (deployed)' : ''}`,
        `${num(median(pick('importMs')))} ms (${num(Math.min(...pick('importMs')))})`,
        `${num(median(pick('importCpuMs')))} ms`,
        `${num(median(pick('readyMs')))} ms`,
        `${num(median(pick('heapUsed')) / 2 ** 20, 1)} MiB`,
      ];
    }),
    notes: [
      'Load + init: import() of the bundle until its handler export is a function (what Lambda bills as Init Duration, less its own runtime start-up).',
      "Process start → ready also counts Node's start-up and this probe's own type stripping; it is the same for every bundle.",
      'Measured on this machine, not on Lambda: compare the rows, not the absolute figures (Lambda ARM64 CPUs at 512 MB are slower).',
    ],
  };
  // CPU time first: on a shared machine the wall time moves with everyone else's work.
  const metrics: Metric[] = cases.flatMap((c) => {
    const key = `cold-start.${c.function}.${c.sourceMaps ? 'source-maps' : 'no-source-maps'}`;
    const label = `Cold start ${c.function}${c.sourceMaps ? ` ${SOURCE_MAPS_FLAG}` : ''}`;
    return [
      {
        key: `${key}.cpu`,
        label: `${label} (CPU of load + init, median)`,
        value: median(c.runs.map((r) => r.importCpuMs)),
        unit: 'ms',
        better: 'lower' as const,
      },
      {
        key,
        label: `${label} (load + init, median)`,
        value: median(c.runs.map((r) => r.importMs)),
        unit: 'ms',
        better: 'lower' as const,
      },
    ];
  });
  return { name: 'cold-start', tables: [table], metrics, targets: [], data: cases };
}

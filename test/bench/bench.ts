/**
 * `npm run bench`: how fast, how lean, how cheap, measured on loopback against the Cloudinary test
 * double and moto. Prints the tables, writes bench-results/<timestamp>.json and latest.json, and
 * compares with the previous run of the same mode. See options.ts for the flags.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { coldStartSection } from './coldStart.js';
import { createContext, type BenchContext } from './context.js';
import { costSection } from './cost.js';
import { dailyRunSection } from './dailyRun.js';
import { economySection } from './economy.js';
import { describeMachine, loadAverage, machineLines } from './machine.js';
import { memorySection } from './memory.js';
import { parseOptions, USAGE, UsageError } from './options.js';
import {
  deltaTable,
  earlierResults,
  RESULTS_DIR,
  saveResults,
  type BenchResults,
  type SectionName,
  type SectionResult,
  type TargetCheck,
} from './results.js';
import { resumeSection } from './resume.js';
import { stopBenchMoto } from './support/awsBed.js';
import { killTrackedProcesses } from './support/child.js';
import { removeAllScratch } from './support/scratch.js';
import { renderTable, type Table } from './table.js';
import { throughputSection } from './throughput.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const SECTIONS: Record<SectionName, (context: BenchContext) => Promise<SectionResult>> = {
  throughput: throughputSection,
  memory: memorySection,
  economy: economySection,
  resume: resumeSection,
  dailyRun: dailyRunSection,
  cost: costSection,
  'cold-start': coldStartSection,
};

function targetsTable(targets: TargetCheck[]): Table {
  return {
    title: 'Targets — where we stand',
    head: ['Target', 'Measured', 'Status'],
    rows: targets.map((t) => [t.target, t.measured, t.met === undefined ? 'n/a' : t.met ? 'met' : 'NOT MET']),
  };
}

async function cleanUp(): Promise<void> {
  killTrackedProcesses();
  await Promise.allSettled([stopBenchMoto(), removeAllScratch()]);
}

async function main(argv: readonly string[]): Promise<number> {
  const options = parseOptions(argv);
  if (options === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const print = (text: string): void => {
    if (options.json) process.stderr.write(`${text}\n`);
    else process.stdout.write(`${text}\n`);
  };
  const startedAt = new Date();
  const machine = describeMachine();
  const context = createContext(
    options.mode,
    options.profile ? join(ROOT, RESULTS_DIR, 'profiles') : undefined,
  );
  print(`npm run bench${options.mode === 'quick' ? ' -- --quick' : ''}: ${options.sections.join(', ')}`);
  for (const line of machineLines(machine)) print(line);

  const results: BenchResults = {
    schema: 1,
    mode: options.mode,
    startedAt: startedAt.toISOString(),
    finishedAt: '',
    durationSeconds: 0,
    machine,
    sections: {},
  };
  const targets: TargetCheck[] = [];
  let failed = false;
  for (const name of options.sections) {
    try {
      const section = await SECTIONS[name](context);
      for (const table of section.tables) print(renderTable(table));
      results.sections[name] = { metrics: section.metrics, targets: section.targets, data: section.data };
      targets.push(...section.targets);
    } catch (error) {
      failed = true;
      print(`\n${name}: FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    }
  }
  await cleanUp();

  machine.loadAverage.end = loadAverage();
  results.finishedAt = new Date().toISOString();
  results.durationSeconds = Math.round((Date.now() - startedAt.getTime()) / 1000);
  if (targets.length > 0) print(renderTable(targetsTable(targets)));
  const delta = deltaTable(await earlierResults(ROOT, options.mode), results);
  if (delta) print(renderTable(delta));
  else print(`\nNo earlier ${options.mode} run in ${RESULTS_DIR}/ to compare with.`);
  const file = await saveResults(ROOT, results);
  print('');
  for (const line of machineLines(machine)) print(line);
  print(
    `Took ${results.durationSeconds} s. Results: ${file.slice(ROOT.length)} and ${RESULTS_DIR}/latest.json`,
  );
  if (options.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  return failed ? 1 : 0;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void cleanUp().finally(() => process.exit(130));
  });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  async (error: unknown) => {
    await cleanUp();
    if (error instanceof UsageError) {
      process.stderr.write(`${error.message}\n\n${USAGE}`);
      process.exit(2);
    }
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);

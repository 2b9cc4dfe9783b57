// Runs in a fresh Node process as Lambda's runtime starts a function: import the handler module from
// LAMBDA_TASK_ROOT and check its export, then print the timings as one JSON line on stdout. Self-contained
// on purpose (Node strips its types): it must load nothing but the bundle under test.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const taskRoot = process.env.LAMBDA_TASK_ROOT ?? process.cwd();
const setting = process.env._HANDLER ?? 'index.handler';
const dot = setting.lastIndexOf('.');
const file = ['.js', '.mjs', '.cjs']
  .map((ext) => join(taskRoot, `${setting.slice(0, dot)}${ext}`))
  .find((path) => existsSync(path));
if (!file) throw new Error(`no module for ${setting} in ${taskRoot}`);

// performance.now() counts from the start of this process: Node's own start-up is before `importStart`.
const importStart = performance.now();
const cpuBefore = process.cpuUsage();
const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
if (typeof mod[setting.slice(dot + 1)] !== 'function') throw new Error(`${setting} is not a function`);
const ready = performance.now();
const cpu = process.cpuUsage(cpuBefore);
// The first stack trace: where a source map, when enabled, is read and applied.
const stack = new Error('probe').stack ?? '';
const stackDone = performance.now();
process.stdout.write(
  `${JSON.stringify({
    nodeStartMs: importStart,
    importMs: ready - importStart,
    importCpuMs: (cpu.user + cpu.system) / 1000,
    readyMs: ready,
    firstStackMs: stackDone - ready,
    stackLines: stack.split('\n').length,
    heapUsed: process.memoryUsage().heapUsed,
    rss: process.memoryUsage().rss,
  })}\n`,
);

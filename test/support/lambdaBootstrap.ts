// Runs in a fresh Node process as Lambda's Node.js runtime does for one invocation: load the module the
// handler setting names from LAMBDA_TASK_ROOT, call its export with (event, context), report the outcome.
// Self-contained on purpose (Node strips its types): it must not load any of the project's code.
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

interface Invocation {
  event: unknown;
  functionName: string;
  invokedFunctionArn: string;
  memoryLimitInMB: string;
  timeoutMs: number;
}

type Outcome =
  | { ok: true; result: unknown; nodeVersion: string; initMs: number; durationMs: number }
  | { ok: false; errorType: string; errorMessage: string; stack: string[]; nodeVersion: string };

const [requestFile, resultFile] = process.argv.slice(2) as [string, string];
const report = (outcome: Outcome): void => writeFileSync(resultFile, JSON.stringify(outcome));
const fail = (errorType: string, error: unknown): void => {
  const err = error instanceof Error ? error : new Error(String(error));
  report({
    ok: false,
    errorType: errorType === 'Handler' ? err.name : errorType,
    errorMessage: err.message,
    stack: (err.stack ?? '').split('\n'),
    nodeVersion: process.versions.node,
  });
};

/** Lambda's module lookup for `<module>.<export>`: .js, then .mjs, then .cjs, in the task root. */
function modulePath(taskRoot: string, moduleName: string): string | undefined {
  return ['.js', '.mjs', '.cjs']
    .map((ext) => join(taskRoot, `${moduleName}${ext}`))
    .find((p) => existsSync(p));
}

async function main(): Promise<void> {
  const invocation = JSON.parse(readFileSync(requestFile, 'utf8')) as Invocation;
  const taskRoot = process.env.LAMBDA_TASK_ROOT ?? process.cwd();
  const handlerSetting = process.env._HANDLER ?? '';
  const dot = handlerSetting.lastIndexOf('.');
  const moduleName = handlerSetting.slice(0, dot);
  const exportName = handlerSetting.slice(dot + 1);
  const initStart = performance.now();
  const file = modulePath(taskRoot, moduleName);
  if (!file) {
    fail('Runtime.ImportModuleError', new Error(`Cannot find module '${moduleName}' in ${taskRoot}`));
    return;
  }
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (error) {
    fail('Runtime.ImportModuleError', error);
    return;
  }
  const handler = mod[exportName];
  if (typeof handler !== 'function') {
    fail('Runtime.HandlerNotFound', new Error(`${handlerSetting} is undefined or not exported`));
    return;
  }
  const initMs = performance.now() - initStart;
  const deadline = Date.now() + invocation.timeoutMs;
  const context = {
    callbackWaitsForEmptyEventLoop: true,
    functionName: invocation.functionName,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION ?? '$LATEST',
    invokedFunctionArn: invocation.invokedFunctionArn,
    memoryLimitInMB: invocation.memoryLimitInMB,
    awsRequestId: randomUUID(),
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME ?? '',
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME ?? '',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
  const started = performance.now();
  try {
    const result: unknown = await (handler as (e: unknown, c: unknown) => unknown)(invocation.event, context);
    report({
      ok: true,
      result,
      nodeVersion: process.versions.node,
      initMs,
      durationMs: performance.now() - started,
    });
  } catch (error) {
    fail('Handler', error);
  }
}

await main();
// Lambda freezes the environment after the response; here the process ends, whatever is still open.
process.exit(0);

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DeployedFunction } from './cloudAssembly.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The project's own Node (the `node` dev dependency), the one the bundles must run on. */
export const PROJECT_NODE = join(ROOT, 'node_modules', 'node', 'bin', 'node');
const BOOTSTRAP = fileURLToPath(new URL('./lambdaBootstrap.ts', import.meta.url));

export interface InvokeOptions {
  /** The function's environment as the template sets it, resolved. */
  environment: Record<string, string>;
  functionName: string;
  functionArn: string;
  /** Added to the environment: where the AWS SDK sends its requests (moto). */
  awsEndpoint: string;
  region: string;
  /** Stops a hung invocation sooner than the function's own timeout. */
  killAfterMs?: number;
}

export type Invocation =
  | { ok: true; result: unknown; nodeVersion: string; initMs: number; durationMs: number; logs: string }
  | {
      ok: false;
      errorType: string;
      errorMessage: string;
      stack: string[];
      nodeVersion: string;
      logs: string;
    };

/** `nodejs24.x` → 24. */
export function runtimeMajor(runtime: string): number {
  const match = /^nodejs(\d+)\.x$/u.exec(runtime);
  if (!match) throw new Error(`${runtime} is not a Node.js Lambda runtime`);
  return Number(match[1]);
}

/**
 * The variables Lambda itself sets in every execution environment, then the function's own (which
 * cannot override the reserved ones), then the test bed's endpoint. Nothing from this process leaks in.
 */
function lambdaEnvironment(fn: DeployedFunction, options: InvokeOptions): NodeJS.ProcessEnv {
  return {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    LANG: 'en_US.UTF-8',
    TZ: ':UTC',
    ...options.environment,
    _HANDLER: fn.handler,
    AWS_EXECUTION_ENV: `AWS_Lambda_${fn.runtime}`,
    AWS_LAMBDA_FUNCTION_NAME: options.functionName,
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memoryMb),
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${options.functionName}`,
    AWS_LAMBDA_LOG_STREAM_NAME: '2026/01/01/[$LATEST]0000',
    LAMBDA_TASK_ROOT: fn.assetDir,
    AWS_REGION: options.region,
    AWS_DEFAULT_REGION: options.region,
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_SESSION_TOKEN: 'testing',
    AWS_ENDPOINT_URL: options.awsEndpoint,
  };
}

/**
 * Invokes the bundle of `fn` once in a fresh process of the project's Node, as Lambda would: the
 * template's handler setting, environment, memory and timeout, the event as given. Fails at once if the
 * template's runtime is not the project's Node major.
 */
export async function invokeDeployed(
  fn: DeployedFunction,
  event: unknown,
  options: InvokeOptions,
): Promise<Invocation> {
  const dir = mkdtempSync(join(tmpdir(), 'lambda-invoke-'));
  try {
    const requestFile = join(dir, 'request.json');
    const resultFile = join(dir, 'result.json');
    writeFileSync(
      requestFile,
      JSON.stringify({
        event,
        functionName: options.functionName,
        invokedFunctionArn: options.functionArn,
        memoryLimitInMB: String(fn.memoryMb),
        timeoutMs: fn.timeoutSeconds * 1000,
      }),
    );
    const child = spawn(PROJECT_NODE, [BOOTSTRAP, requestFile, resultFile], {
      cwd: fn.assetDir,
      env: lambdaEnvironment(fn, options),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let logs = '';
    const keep = (chunk: Buffer) => {
      logs = (logs + chunk.toString('utf8')).slice(-20_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const limit = options.killAfterMs ?? fn.timeoutSeconds * 1000;
    const timer = setTimeout(() => child.kill('SIGKILL'), limit);
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (c) => resolve(c));
    });
    clearTimeout(timer);
    let outcome: Omit<Invocation, 'logs'>;
    try {
      outcome = JSON.parse(readFileSync(resultFile, 'utf8')) as Omit<Invocation, 'logs'>;
    } catch {
      throw new Error(`${fn.logicalId}: the runtime process exited (${code}) without a result:\n${logs}`);
    }
    const expected = runtimeMajor(fn.runtime);
    if (Number(outcome.nodeVersion.split('.')[0]) !== expected) {
      throw new Error(
        `${fn.logicalId} runs ${fn.runtime} on Lambda but the project's Node is ${outcome.nodeVersion}: move both together`,
      );
    }
    return { ...outcome, logs } as Invocation;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

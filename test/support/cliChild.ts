import { spawn } from 'node:child_process';
import { REPO } from './backupBed.js';

/** What a command run as a child process left behind. */
export interface FinishedCommand {
  code: number | null;
  stdout: string;
  stderr: string;
  /** When the process exited, by this process's clock (performance.now()). */
  exitedAt: number;
  /** When `startMark` first appeared on stdout, if asked. */
  markedAt?: number;
}

/**
 * Runs a CLI as a child process, as `npm run` does (`node --import tsx script`), and waits for its
 * exit; a command still running after `giveUpMs` is killed (its exit code is then null).
 */
export function runCommand(
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  options: { startMark?: RegExp; giveUpMs?: number } = {},
): Promise<FinishedCommand> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: REPO,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let markedAt: number | undefined;
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
    if (options.startMark && markedAt === undefined && options.startMark.test(stdout))
      markedAt = performance.now();
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const killer = setTimeout(() => child.kill('SIGKILL'), options.giveUpMs ?? 120_000);
  return new Promise((resolve) => {
    child.once('close', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr, exitedAt: performance.now(), markedAt });
    });
  });
}

/** The environment without the test runner's AWS, Cloudinary and stack settings, plus `extra`. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(env)) {
    if (/^(AWS_|CLOUDINARY_|BUCKET_NAME|TABLE_NAME|QUEUE_URL|DLQ_URL|STACK_NAME|BACKUP_BUCKET)/u.test(name))
      delete env[name];
  }
  return { ...env, ...extra };
}

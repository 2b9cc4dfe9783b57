import { spawn } from 'node:child_process';
import { constants } from 'node:os';

/** Set in the environment of a relaunched command, so it is never relaunched again. */
export const RELAUNCHED_ENV = 'CLOUDINARY_BACKUP_RELAUNCHED';

/** A flag's name: `--max-old-space-size=128` → `--max-old-space-size` (V8 also reads `_` for `-`). */
function flagName(flag: string): string {
  return (flag.split('=', 1)[0] ?? flag).replaceAll('_', '-');
}

/**
 * The flags of `wanted` this process was started without: neither on its command line nor in
 * NODE_OPTIONS, compared by name, so a value the user chose (a larger heap) is kept.
 */
export function missingNodeFlags(
  wanted: readonly string[],
  execArgv: readonly string[] = process.execArgv,
  nodeOptions: string = process.env.NODE_OPTIONS ?? '',
): string[] {
  const present = new Set([...execArgv, ...nodeOptions.split(/\s+/u)].filter(Boolean).map(flagName));
  return wanted.filter((flag) => !present.has(flagName(flag)));
}

/** Whether this process should start the command again with `flags`: some are missing, and it was not relaunched already. */
export function shouldRelaunch(flags: readonly string[], env: NodeJS.ProcessEnv = process.env): boolean {
  return flags.length > 0 && env[RELAUNCHED_ENV] === undefined;
}

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * Runs this command again in a Node started with `flags` (the installed `cloudinary-backup` is
 * started by its `#!/usr/bin/env node` line, which can pass none): the same script, arguments,
 * terminal and environment; a signal sent to this process is passed on, and this resolves with the
 * command's exit code (128 + the signal's number when a signal ended it, as a shell reports it).
 */
export function relaunchWith(
  flags: readonly string[],
  script: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const child = spawn(process.execPath, [...process.execArgv, ...flags, script, ...args], {
    stdio: 'inherit',
    env: { ...env, [RELAUNCHED_ENV]: '1' },
  });
  const forward = (signal: NodeJS.Signals): void => {
    child.kill(signal);
  };
  for (const signal of FORWARDED) process.on(signal, forward);
  return new Promise<number>((resolve, reject) => {
    const done = (): void => {
      for (const signal of FORWARDED) process.off(signal, forward);
    };
    child.once('error', (error) => {
      done();
      reject(error);
    });
    child.once('exit', (code, signal) => {
      done();
      resolve(code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0));
    });
  });
}

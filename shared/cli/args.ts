import { ConfigError, describeError, FatalError, redactSecrets } from '../errors.js';

/** One command-line option; its key in the spec (camelCase) becomes `--kebab-case`. */
export interface FlagSpec {
  type: 'boolean' | 'string' | 'number';
  description: string;
  /** Shown in help after the flag: `--dest DIR`. */
  valueName?: string;
  /** A string flag that may stand alone (`--restore-archived`) and then takes this value; give others with `=`. */
  impliedValue?: string;
  /** Accepted values of a string flag, checked case-insensitively and returned as written here. */
  choices?: readonly string[];
  /** Value when the flag is absent. */
  default?: string | number | boolean;
  /** Environment variable named in help as the fallback (the command reads it itself). */
  env?: string;
}

export type FlagSpecs = Record<string, FlagSpec>;

type ValueOf<F extends FlagSpec> = F['type'] extends 'boolean'
  ? boolean
  : F['type'] extends 'number'
    ? number
    : string;

export type ParsedFlags<S extends FlagSpecs> = { [K in keyof S]?: ValueOf<S[K]> } & { help?: boolean };

export interface CommandSpec<S extends FlagSpecs> {
  /** How people run it: `npm run pull --`. */
  usage: string;
  /** One or two sentences on what it does. */
  summary: string;
  flags: S;
  /** Worked examples shown at the end of help. */
  examples?: string[];
  /** Accepts non-flag arguments (otherwise they are usage errors). */
  positionals?: boolean;
}

export interface ParsedArgs<S extends FlagSpecs> {
  flags: ParsedFlags<S>;
  positionals: string[];
}

/** A mistake on the command line: printed in one line with a pointer to `--help`, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Runs a check of what the user gave; its ConfigError becomes a usage error (exit code 2). */
export async function asUsage<T>(check: () => T | Promise<T>): Promise<T> {
  try {
    return await check();
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(error.message);
    throw error;
  }
}

export function flagName(key: string): string {
  return `--${key.replace(/[A-Z]/gu, (c) => `-${c.toLowerCase()}`)}`;
}

/**
 * Parses `--flag`, `--no-flag`, `--key value`, `--key=value` and `--` against a spec. Unknown
 * flags are rejected with the list of valid ones (and the nearest match): typos fail loudly.
 */
export function parseArgs<S extends FlagSpecs>(
  argv: readonly string[],
  command: CommandSpec<S>,
): ParsedArgs<S> {
  const byName = new Map<string, string>();
  for (const key of Object.keys(command.flags)) byName.set(flagName(key), key);
  const flags: Record<string, string | number | boolean> = {};
  const positionals: string[] = [];

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    if (arg === '--help' || arg === '-h') {
      flags.help = true;
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg : arg.slice(0, eq);
    const inline = eq === -1 ? undefined : arg.slice(eq + 1);
    let key = byName.get(name);
    let negated = false;
    if (key === undefined && name.startsWith('--no-')) {
      const positive = byName.get(`--${name.slice(5)}`);
      if (positive !== undefined && command.flags[positive]?.type === 'boolean') {
        key = positive;
        negated = true;
      }
    }
    const spec = key === undefined ? undefined : command.flags[key];
    if (key === undefined || spec === undefined)
      throw new UsageError(unknownFlagMessage(name, [...byName.keys()]));

    if (spec.type === 'boolean') {
      if (inline !== undefined) {
        if (!/^(true|false)$/iu.test(inline))
          throw new UsageError(`${name} takes no value (got "${inline}")`);
        flags[key] = inline.toLowerCase() === 'true' && !negated;
      } else {
        flags[key] = !negated;
      }
      continue;
    }
    let raw = inline;
    if (raw === undefined && spec.impliedValue !== undefined) raw = spec.impliedValue;
    if (raw === undefined) {
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith('--') && next.length > 2)) {
        throw new UsageError(`${name} needs a value: ${name} ${spec.valueName ?? 'VALUE'}`);
      }
      raw = next;
      i++;
    }
    flags[key] = convert(name, spec, raw);
  }

  if (positionals.length > 0 && !command.positionals) {
    throw new UsageError(`unexpected argument "${positionals[0]}"; options start with --`);
  }
  for (const [key, spec] of Object.entries(command.flags)) {
    if (flags[key] === undefined && spec.default !== undefined) flags[key] = spec.default;
  }
  return { flags: flags as ParsedFlags<S>, positionals };
}

function convert(name: string, spec: FlagSpec, raw: string): string | number {
  if (spec.type === 'number') {
    const value = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(value))
      throw new UsageError(`${name} needs a number (got "${raw}")`);
    return value;
  }
  if (spec.choices) {
    const match = spec.choices.find((choice) => choice.toLowerCase() === raw.toLowerCase());
    if (match === undefined)
      throw new UsageError(`${name} must be one of ${spec.choices.join(', ')} (got "${raw}")`);
    return match;
  }
  return raw;
}

function unknownFlagMessage(name: string, valid: string[]): string {
  const nearest = valid
    .map((candidate) => ({ candidate, distance: editDistance(name, candidate) }))
    .sort((a, b) => a.distance - b.distance)[0];
  const hint = nearest && nearest.distance <= 3 ? ` Did you mean ${nearest.candidate}?` : '';
  return `unknown option ${name}.${hint} Valid options: ${[...valid, '--help'].join(', ')}`;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/** Help text: usage, summary, one aligned line per option, examples. */
export function formatHelp<S extends FlagSpecs>(command: CommandSpec<S>): string {
  const rows = Object.entries(command.flags).map(([key, spec]) => {
    let left = flagName(key);
    if (spec.type !== 'boolean') {
      const value = spec.valueName ?? (spec.choices ? spec.choices.join('|') : 'VALUE');
      left += spec.impliedValue !== undefined ? `[=${value}]` : ` ${value}`;
    }
    const extras: string[] = [];
    if (spec.env) extras.push(`env ${spec.env}`);
    if (spec.default !== undefined && spec.type !== 'boolean') extras.push(`default ${String(spec.default)}`);
    const right = extras.length
      ? `${spec.description.replace(/\.$/u, '')} (${extras.join('; ')}).`
      : spec.description;
    return { left, right };
  });
  rows.push({ left: '--help', right: 'Show this help.' });
  const width = Math.max(...rows.map((row) => row.left.length)) + 2;
  const lines = [`Usage: ${command.usage}`, '', command.summary, '', 'Options:'];
  for (const row of rows) lines.push(`  ${row.left.padEnd(width)}${row.right}`);
  if (command.examples?.length)
    lines.push('', 'Examples:', ...command.examples.map((example) => `  ${example}`));
  return `${lines.join('\n')}\n`;
}

export interface CliStreams {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/**
 * Runs a CLI's main and turns what it throws into one line and an exit code: 2 for usage
 * errors (with a pointer to --help), 1 for everything else. Never prints a stack for expected errors.
 */
export async function runCli(
  main: () => Promise<number>,
  options: { name: string; streams?: CliStreams } = { name: 'command' },
): Promise<number> {
  const stderr = options.streams?.stderr ?? process.stderr;
  try {
    return await main();
  } catch (error) {
    if (error instanceof UsageError) {
      stderr.write(`${options.name}: ${error.message}\nRun with --help for usage.\n`);
      return 2;
    }
    // Our own fatal errors already say what to do; anything else gets its class name too.
    const message = error instanceof FatalError ? redactSecrets(error.message) : describeError(error);
    stderr.write(`${options.name}: ${message}\n`);
    if (!(error instanceof FatalError) && process.env.DEBUG && error instanceof Error && error.stack) {
      stderr.write(`${redactSecrets(error.stack)}\n`);
    }
    return 1;
  }
}

/** How long a finished command waits for what a library left open before it exits anyway. */
const EXIT_GRACE_MS = 1_000;

/**
 * Ends a command's process with `code`: at once when nothing is left open, else after a short
 * grace, so a socket or timer some library keeps can never hold a finished command forever.
 */
export function exitWhenDone(code: number): void {
  process.exitCode = code;
  setTimeout(() => process.exit(code), EXIT_GRACE_MS).unref();
}

/** Whether output should be for people (a TTY) or for pipes; `--json` wins over both. */
export function outputModeFor(
  stream: { isTTY?: boolean },
  json: boolean | undefined,
): 'tty' | 'plain' | 'json' {
  if (json) return 'json';
  return stream.isTTY ? 'tty' : 'plain';
}

/** Writes one JSON object per line. */
export function writeJsonLine(stream: NodeJS.WritableStream, value: unknown): void {
  stream.write(`${JSON.stringify(value)}\n`);
}

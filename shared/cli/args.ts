import { parseArgs as parseNodeArgs, type ParseArgsOptionsConfig } from 'node:util';
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
  /** A number flag's whole-number bounds, inclusive (`Infinity` for none above). */
  range?: readonly [number, number];
  /** Value when the flag is absent. */
  default?: string | number | boolean;
  /** Environment variable named in help as the fallback (the command reads it itself). */
  env?: string;
  /** An earlier name (camelCase) still accepted, not shown in help. */
  alias?: string;
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
 * Parses `--flag`, `--no-flag`, `--key value`, `--key=value` and `--` against a spec with
 * `node:util`'s strict parser, then converts numbers and choices. Unknown flags are rejected with
 * the list of valid ones (and the nearest match): typos fail loudly.
 */
export function parseArgs<S extends FlagSpecs>(
  argv: readonly string[],
  command: CommandSpec<S>,
): ParsedArgs<S> {
  const names = namesOf(command.flags);
  const options: ParseArgsOptionsConfig = { help: { type: 'boolean', short: 'h' } };
  for (const [name, [, spec]] of names)
    options[name.slice(2)] = { type: spec.type === 'boolean' ? 'boolean' : 'string' };
  const end = argv.indexOf('--');
  // Node's parser has no optional values: a lone `--restore-archived` becomes `--restore-archived=Bulk`.
  const args = argv.map((arg, i) => {
    const implied = names.get(arg)?.[1].impliedValue;
    return implied !== undefined && (end === -1 || i < end) ? `${arg}=${implied}` : arg;
  });
  let parsed;
  try {
    parsed = parseNodeArgs({ args, options, strict: true, allowPositionals: true, allowNegative: true });
  } catch (error) {
    throw usageErrorFor(error, names);
  }
  if (parsed.positionals.length > 0 && !command.positionals) {
    throw new UsageError(`unexpected argument "${parsed.positionals[0]}"; options start with --`);
  }
  const flags: Record<string, string | number | boolean> = {};
  for (const [name, raw] of Object.entries(parsed.values)) {
    const [key, spec] = names.get(`--${name}`) ?? [name, undefined];
    if (typeof raw === 'boolean') flags[key] = raw;
    else if (typeof raw === 'string' && spec) flags[key] = convert(flagName(key), spec, raw);
  }
  for (const [key, spec] of Object.entries(command.flags)) {
    if (flags[key] === undefined && spec.default !== undefined) flags[key] = spec.default;
  }
  return { flags: flags as ParsedFlags<S>, positionals: parsed.positionals };
}

/** Every accepted `--name` (an alias's too) with the key and spec it stands for. */
function namesOf(flags: FlagSpecs): Map<string, [string, FlagSpec]> {
  const names = new Map<string, [string, FlagSpec]>();
  for (const [key, spec] of Object.entries(flags))
    for (const name of [key, spec.alias]) if (name) names.set(flagName(name), [key, spec]);
  return names;
}

/** Says what node's parser rejected, in this CLI's words. */
function usageErrorFor(error: unknown, names: Map<string, [string, FlagSpec]>): unknown {
  const { code, message } = error as { code?: string; message: string };
  const name = /'(?:-\w, )?(-{1,2}[^'\s<=]+)/u.exec(message)?.[1] ?? '';
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return new UsageError(unknownFlagMessage(name, names));
  if (code !== 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') return error;
  const spec = names.get(name)?.[1];
  if (!spec || spec.type === 'boolean') return new UsageError(`${name} takes no value`);
  const dash = /ambiguous/u.test(message) ? ` (a value starting with - goes after =: ${name}=-1)` : '';
  return new UsageError(`${name} needs a value: ${name} ${spec.valueName ?? 'VALUE'}${dash}`);
}

function convert(name: string, spec: FlagSpec, raw: string): string | number {
  if (spec.type === 'number') {
    const value = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(value))
      throw new UsageError(`${name} needs a number (got "${raw}")`);
    const [min, max] = spec.range ?? [-Infinity, Infinity];
    if (spec.range && (!Number.isInteger(value) || value < min || value > max))
      throw new UsageError(
        `${name} must be a whole number ${max === Infinity ? `of ${min} or more` : `from ${min} to ${max}`}`,
      );
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

/** Names the nearest option (an earlier name too, with its new one) and lists the valid ones. */
function unknownFlagMessage(name: string, names: Map<string, [string, FlagSpec]>): string {
  const [nearest] = [...names.keys()].sort((a, b) => editDistance(name, a) - editDistance(name, b));
  const now = nearest && flagName(names.get(nearest)?.[0] ?? '');
  const hint =
    nearest && editDistance(name, nearest) <= 3
      ? ` Did you mean ${nearest}${now === nearest ? '' : ` (now ${now})`}?`
      : '';
  const valid = [...new Set([...names.values()].map(([key]) => flagName(key))), '--help'];
  return `unknown option ${name}.${hint} Valid options: ${valid.join(', ')}`;
}

/** Levenshtein distance, one row at a time. */
function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++)
      next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
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

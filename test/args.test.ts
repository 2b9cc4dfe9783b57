import { describe, expect, it } from 'vitest';
import {
  flagName,
  formatHelp,
  parseArgs,
  runCli,
  UsageError,
  type CommandSpec,
  type FlagSpec,
} from '../shared/cli/args.js';
import { ConfigError } from '../shared/errors.js';

const command = {
  usage: 'npm run tool --',
  summary: 'Does a thing.',
  flags: {
    dest: { type: 'string', valueName: 'DIR', description: 'Where.' },
    concurrency: { type: 'number', default: 4, description: 'How many.' },
    dryRun: { type: 'boolean', description: 'Pretend.' },
    tier: { type: 'string', impliedValue: 'Bulk', choices: ['Bulk', 'Standard'], description: 'Tier.' },
  },
} satisfies CommandSpec<Record<string, FlagSpec>>;

function streams() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    streams: {
      stdout: { write: (s: string) => out.push(s) } as unknown as NodeJS.WritableStream,
      stderr: { write: (s: string) => err.push(s) } as unknown as NodeJS.WritableStream,
    },
  };
}

describe('command-line parser', () => {
  it('reads --flag, --key value, --key=value and defaults', () => {
    const { flags } = parseArgs(['--dest', '/a b', '--dry-run', '--concurrency=8'], command);

    expect(flags).toEqual({ dest: '/a b', dryRun: true, concurrency: 8 });
  });

  it('applies defaults and --no- for booleans', () => {
    expect(parseArgs(['--no-dry-run'], command).flags).toEqual({ dryRun: false, concurrency: 4 });
  });

  it('gives an optional-value flag its implied value alone, or the one after =', () => {
    expect(parseArgs(['--tier'], command).flags.tier).toBe('Bulk');
    expect(parseArgs(['--tier=standard'], command).flags.tier).toBe('Standard');
    expect(() => parseArgs(['--tier=Fast'], command)).toThrow('--tier must be one of Bulk, Standard');
  });

  it('rejects unknown flags, naming the nearest and listing the valid ones', () => {
    expect(() => parseArgs(['--dset', 'x'], command)).toThrow(
      'unknown option --dset. Did you mean --dest? Valid options: --dest, --concurrency, --dry-run, --tier, --help',
    );
  });

  it('rejects missing values, bad numbers and stray arguments', () => {
    expect(() => parseArgs(['--dest'], command)).toThrow('--dest needs a value: --dest DIR');
    expect(() => parseArgs(['--dest', '--dry-run'], command)).toThrow('--dest needs a value');
    expect(() => parseArgs(['--concurrency', 'many'], command)).toThrow('--concurrency needs a number');
    expect(() => parseArgs(['oops'], command)).toThrow(UsageError);
  });

  it('rejects a value given to a yes/no flag, and says how to pass a value that starts with -', () => {
    expect(() => parseArgs(['--dry-run=yes'], command)).toThrow('--dry-run takes no value');
    expect(() => parseArgs(['--dest', '-x'], command)).toThrow('goes after =: --dest=-1');
    expect(parseArgs(['--dest=-x'], command).flags.dest).toBe('-x');
  });

  it('accepts the earlier name of a renamed flag without listing it in help', () => {
    const renamed = {
      ...command,
      flags: { concurrency: { type: 'number', alias: 'workers', description: 'How many.' } },
    } satisfies CommandSpec<Record<string, FlagSpec>>;

    expect(parseArgs(['--workers', '3'], renamed).flags.concurrency).toBe(3);
    expect(() => parseArgs(['--worker', '3'], renamed)).toThrow(
      'unknown option --worker. Did you mean --workers (now --concurrency)? Valid options: --concurrency, --help',
    );
    expect(formatHelp(renamed)).not.toContain('--workers');
  });

  it('takes everything after -- as arguments, even what looks like a flag', () => {
    const loose = { ...command, positionals: true };

    expect(parseArgs(['--tier', '--', '--tier'], loose)).toEqual({
      flags: { tier: 'Bulk', concurrency: 4 },
      positionals: ['--tier'],
    });
  });

  it('holds a number flag to its whole-number range', () => {
    const bounded = {
      ...command,
      flags: { jobs: { type: 'number', range: [1, 64], description: 'Jobs.' } },
    } satisfies CommandSpec<Record<string, FlagSpec>>;

    expect(parseArgs(['--jobs', '64'], bounded).flags.jobs).toBe(64);
    expect(() => parseArgs(['--jobs', '0'], bounded)).toThrow('--jobs must be a whole number from 1 to 64');
    expect(() => parseArgs(['--jobs', '1.5'], bounded)).toThrow('--jobs must be a whole number');
  });

  it('sees --help anywhere', () => {
    expect(parseArgs(['--dest', 'x', '--help'], command).flags.help).toBe(true);
    expect(parseArgs(['-h'], command).flags.help).toBe(true);
  });

  it('writes help with one aligned line per option', () => {
    const help = formatHelp(command);

    expect(help).toContain('Usage: npm run tool --');
    expect(help).toMatch(/^ {2}--dest DIR {14}Where\.$/mu);
    expect(help).toContain('--tier[=Bulk|Standard]');
    expect(help).toContain('How many (default 4).');
    expect(flagName('restoreArchived')).toBe('--restore-archived');
  });
});

describe('runCli', () => {
  it('turns a usage error into one line, a pointer to --help and exit code 2', async () => {
    const io = streams();

    const code = await runCli(
      async () => {
        parseArgs(['--nope'], command);
        return 0;
      },
      { name: 'tool', streams: io.streams },
    );

    expect(code).toBe(2);
    expect(io.err.join('')).toMatch(/^tool: unknown option --nope\. .*\nRun with --help for usage\.\n$/u);
  });

  it('prints a configuration error as its advice alone, exit code 1', async () => {
    const io = streams();

    const code = await runCli(
      async () => {
        throw new ConfigError('destination /x does not exist: plug in the drive');
      },
      { name: 'tool', streams: io.streams },
    );

    expect(code).toBe(1);
    expect(io.err).toEqual(['tool: destination /x does not exist: plug in the drive\n']);
  });
});

import { SECTION_NAMES, type SectionName } from './results.js';
import type { Mode } from './workloads.js';

export interface BenchOptions {
  mode: Mode;
  sections: SectionName[];
  json: boolean;
  profile: boolean;
}

export const USAGE = `Usage: npm run bench -- [--quick] [--only SECTION[,SECTION]] [--json] [--profile]

Measures on loopback against the Cloudinary test double (and moto_server for AWS):
  throughput  backup and pipeline throughput next to a plain HTTP→MD5→file baseline
  memory      peak RSS of the replicate worker copying large assets into S3
  economy     Admin API calls vs the floor, no-change re-runs, AWS requests per asset
  resume      bytes downloaded ÷ bytes needed after kill -9 (backup and replicate)
  dailyRun    Admin calls and DynamoDB units of a daily run: incremental and reconciliation
  cost        monthly AWS cost from the measured request counts
  cold-start  init time of each handler bundle from cdk.out, with and without source maps

  --quick     smaller workloads (under 2 minutes); compared only with earlier --quick runs
  --only      run only these sections (repeatable)
  --json      print the results as JSON on stdout, tables and progress on stderr
              (npm run -s bench -- --json > results.json keeps npm's banner out)
  --profile   write a V8 CPU profile of every child process to bench-results/profiles/

Results: bench-results/<timestamp>.json and bench-results/latest.json.
`;

export class UsageError extends Error {
  override name = 'UsageError';
}

export function parseOptions(argv: readonly string[]): BenchOptions | 'help' {
  const options: BenchOptions = { mode: 'full', sections: [], json: false, profile: false };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] ?? '';
    const [name, inline] = arg.startsWith('--') && arg.includes('=') ? arg.split('=', 2) : [arg, undefined];
    switch (name) {
      case '--help':
      case '-h':
        return 'help';
      case '--quick':
        options.mode = 'quick';
        break;
      case '--json':
        options.json = true;
        break;
      case '--profile':
        options.profile = true;
        break;
      case '--only': {
        const value = inline ?? argv[++i];
        if (!value) throw new UsageError('--only needs a section name');
        for (const section of value.split(',').map((s) => s.trim())) {
          if (!(SECTION_NAMES as readonly string[]).includes(section)) {
            throw new UsageError(`unknown section "${section}"; choose from ${SECTION_NAMES.join(', ')}`);
          }
          if (!options.sections.includes(section as SectionName))
            options.sections.push(section as SectionName);
        }
        break;
      }
      default:
        throw new UsageError(`unknown argument "${arg}"`);
    }
  }
  if (options.sections.length === 0) options.sections = [...SECTION_NAMES];
  else options.sections = SECTION_NAMES.filter((name) => options.sections.includes(name));
  return options;
}

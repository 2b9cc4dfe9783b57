import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { offlineEnv } from './support/cloudAssembly.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CDK_CLI = join(ROOT, 'node_modules', 'aws-cdk', 'bin', 'cdk');

interface Synth {
  status: number | null;
  output: string;
}

let outdir: string;
let synth: Synth;

beforeAll(() => {
  outdir = mkdtempSync(join(tmpdir(), 'replicator-synth-'));
  const result = spawnSync(
    process.execPath,
    [CDK_CLI, 'synth', '--quiet', '--no-notices', '--output', outdir],
    {
      cwd: ROOT,
      env: offlineEnv(outdir),
      encoding: 'utf8',
      timeout: 180_000,
    },
  );
  synth = {
    status: result.status,
    output: `${result.stdout}\n${result.stderr}\n${result.error ?? ''}`,
  };
}, 200_000);

afterAll(() => {
  rmSync(outdir, { recursive: true, force: true });
});

describe('cdk synth with the pinned CLI, offline and without credentials', () => {
  it('uses the pinned CLI', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'node_modules', 'aws-cdk', 'package.json'), 'utf8')) as {
      version: string;
    };
    expect(pkg.version).toMatch(/^2\.1148\./u);
  });

  it('exits 0 and writes the stack template', () => {
    expect(synth).toMatchObject({ status: 0 });
    expect(existsSync(join(outdir, 'Replicator.template.json'))).toBe(true);
  });

  it('bundles each handler as an ESM module with a source map that loads on the pinned Node and exports handler', () => {
    const template = JSON.parse(readFileSync(join(outdir, 'Replicator.template.json'), 'utf8')) as {
      Resources: Record<string, { Type: string; Properties: { Handler: string; Code: { S3Key: string } } }>;
    };
    const functions = Object.values(template.Resources).filter((r) => r.Type === 'AWS::Lambda::Function');
    expect(functions).toHaveLength(2);
    for (const fn of functions) {
      expect(fn.Properties.Handler).toBe('index.handler');
      const assetDir = join(outdir, `asset.${fn.Properties.Code.S3Key.replace(/\.zip$/u, '')}`);
      const bundle = join(assetDir, 'index.mjs');
      expect(readFileSync(bundle, 'utf8')).toMatch(/^import \{ createRequire as \w+ \} from 'node:module';/u);
      expect(existsSync(`${bundle}.map`)).toBe(true);
      const probe = spawnSync(
        process.execPath,
        [
          '--enable-source-maps',
          '--input-type=module',
          '-e',
          `const m = await import(${JSON.stringify(bundle)}); process.stdout.write(typeof m.handler);`,
        ],
        { cwd: assetDir, env: offlineEnv(outdir), encoding: 'utf8', timeout: 30_000 },
      );
      expect({ exported: probe.stdout, stderr: probe.stderr }).toMatchObject({ exported: 'function' });
    }
  });
});

/**
 * Builds `cloudinary-backup` into dist/cli.js: the repository's own code (the demo's Cloudinary
 * double included) in one file, npm packages left as imports of the production `dependencies`.
 * Fails when the bundle would need any other package at run time.
 */
import { build } from 'esbuild';
import { builtinModules } from 'node:module';
import { readFile, rm } from 'node:fs/promises';

const root = new URL('..', import.meta.url);
const pkg = JSON.parse(await readFile(new URL('package.json', root), 'utf8')) as {
  dependencies: Record<string, string>;
};
await rm(new URL('dist/', root), { recursive: true, force: true });
const result = await build({
  absWorkingDir: root.pathname,
  entryPoints: ['shared/cli/bin.ts'],
  outfile: 'dist/cli.js',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node24',
  packages: 'external',
  banner: { js: '#!/usr/bin/env node' },
  // Every module of a bundle shares one import.meta.url: a URL no process starts with keeps each
  // command's "run me when started directly" check from firing beside the entry.
  define: { 'import.meta.url': JSON.stringify('file:///cloudinary-backup/bundle.js') },
  metafile: true,
  logLevel: 'warning',
});

const builtins = new Set(builtinModules);
const needed = new Set<string>();
for (const output of Object.values(result.metafile.outputs)) {
  for (const { path, external } of output.imports) {
    if (!external || path.startsWith('node:') || builtins.has(path)) continue;
    needed.add(path.startsWith('@') ? path.split('/').slice(0, 2).join('/') : (path.split('/')[0] ?? path));
  }
}
const missing = [...needed].filter((name) => !(name in pkg.dependencies));
if (missing.length > 0) {
  console.error(
    `dist/cli.js imports ${missing.join(', ')} at run time: move it to "dependencies" or stop importing it.`,
  );
  process.exit(1);
}
// On stderr: `npm pack --json` runs this first, and its stdout must stay JSON.
console.error(`dist/cli.js built; it imports ${[...needed].sort().join(', ')}`);

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The moto the tests are written against (DESIGN.md); the virtualenv installs exactly this one. */
export const MOTO_VERSION = '5.2.1';
const REQUIREMENT = `moto[server]==${MOTO_VERSION}`;
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** Git-ignored; MOTO_VENV moves it (CI proves the install from an empty folder that way). */
const DEFAULT_VENV = join(ROOT, '.cache', 'moto-venv');
const MARKER = '.installed';

const PYTHON_HINT =
  'Install Python 3.9 or newer with its venv module (Debian/Ubuntu: apt-get install python3 python3-venv; ' +
  'macOS: brew install python), or install moto yourself: pip install "moto[server]==' +
  MOTO_VERSION +
  '". Then run the tests again.';

function run(command: string, args: string[]): { ok: boolean; output: string } {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 15 * 60_000 });
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}${result.error ? String(result.error) : ''}`;
  return { ok: result.status === 0, output: output.trim().slice(-2000) };
}

/** A Python 3.9+ from PATH to build the virtualenv with. */
function basePython(onPath: (name: string) => string | undefined): string {
  for (const name of ['python3', 'python']) {
    const python = onPath(name);
    if (!python) continue;
    const probe = run(python, ['-c', 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)']);
    if (probe.ok) return python;
  }
  throw new Error(`moto_server was not found, and no Python 3.9+ is on PATH to install it. ${PYTHON_HINT}`);
}

function venvPython(venv: string): string {
  return process.platform === 'win32' ? join(venv, 'Scripts', 'python.exe') : join(venv, 'bin', 'python');
}

function installed(venv: string): boolean {
  const marker = join(venv, MARKER);
  return existsSync(marker) && readFileSync(marker, 'utf8').trim() === REQUIREMENT;
}

/**
 * The Python of a project-local virtualenv holding the pinned `moto[server]`: reused when it is
 * there, otherwise built from the Python on PATH with pip (once; later runs find it ready).
 */
export function motoVenvPython(onPath: (name: string) => string | undefined): string {
  const venv = process.env.MOTO_VENV || DEFAULT_VENV;
  if (installed(venv)) return venvPython(venv);
  const python = basePython(onPath);
  mkdirSync(dirname(venv), { recursive: true });
  // Built beside its final place and renamed at the end: a half-built one is never taken for ready.
  const staging = `${venv}.partial-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  console.error(`moto_server was not found: installing ${REQUIREMENT} into ${venv} (once)...`);
  try {
    const created = run(python, ['-m', 'venv', staging]);
    if (!created.ok) {
      throw new Error(`could not create a virtualenv with ${python}: ${created.output}\n${PYTHON_HINT}`);
    }
    const pip = run(venvPython(staging), [
      '-m',
      'pip',
      'install',
      '--disable-pip-version-check',
      '--no-input',
      '--quiet',
      REQUIREMENT,
    ]);
    if (!pip.ok) {
      throw new Error(
        `pip could not install ${REQUIREMENT} (is PyPI reachable?): ${pip.output}\n` +
          `Or install it yourself: pip install "${REQUIREMENT}", then run the tests again.`,
      );
    }
    writeFileSync(join(staging, MARKER), `${REQUIREMENT}\n`);
    if (installed(venv)) return venvPython(venv);
    rmSync(venv, { recursive: true, force: true });
    try {
      renameSync(staging, venv);
    } catch (error) {
      // Another test run finished the same install first: use theirs.
      if (!installed(venv)) throw error;
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  return venvPython(venv);
}

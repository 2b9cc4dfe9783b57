import { realpath, statfs } from 'node:fs/promises';
import { dirname, resolve, sep } from 'node:path';
import { ConfigError } from '../errors.js';

/** Kernel file systems that hold no files (Linux magic numbers): writing there fails or spins forever. */
const KERNEL_FILE_SYSTEMS = new Map<number, string>([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x1cd1, 'devpts'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x73636673, 'securityfs'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0xcafe4a11, 'bpf'],
]);
/** Folders of the system's devices and processes, whatever file system backs them. */
const SYSTEM_ROOTS = ['/proc', '/sys', '/dev'];

/**
 * Refuses a destination inside /proc, /sys, /dev or another kernel file system, where a recursive
 * mkdir can loop forever (Node's, on /proc) and no file could be kept anyway.
 */
export async function refuseSystemFolder(dest: string, flag = '--dest'): Promise<void> {
  const wanted = resolve(dest);
  let existing = wanted;
  let real: string | undefined;
  for (;;) {
    real = await realpath(existing).catch(() => undefined);
    if (real !== undefined || dirname(existing) === existing) break;
    existing = dirname(existing);
  }
  const where = real ?? existing;
  const root = SYSTEM_ROOTS.find(
    (r) => where === r || where.startsWith(`${r}${sep}`) || wanted.startsWith(`${r}${sep}`),
  );
  const kind =
    real === undefined
      ? undefined
      : KERNEL_FILE_SYSTEMS.get((await statfs(real).catch(() => undefined))?.type ?? -1);
  if (root === undefined && kind === undefined) return;
  throw new ConfigError(
    `${flag} ${dest} is inside ${root ?? `a ${kind} file system`}, which the system keeps for itself and which holds no files; choose a folder on a disk.`,
  );
}

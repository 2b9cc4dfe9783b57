import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const made = new Set<string>();

/** A fresh folder under the system temp dir, removed by `removeScratch` or at exit by `removeAllScratch`. */
export async function makeScratch(label: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `cloudinary-bench-${label}-`));
  made.add(dir);
  return dir;
}

export async function removeScratch(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  made.delete(dir);
}

export async function removeAllScratch(): Promise<void> {
  await Promise.all([...made].map(removeScratch));
}

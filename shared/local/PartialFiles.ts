import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { removeFile } from './files.js';

/**
 * The resumable partial files of a store's temp folder, by key: read from the folder once, then
 * kept by the store as it writes and removes them (the folder lock keeps other writers out), so
 * a copy never lists the folder again. Names are `<key hash>.v<version>.part`.
 */
export class PartialFiles {
  private readonly byKey = new Map<string, Set<string>>();

  constructor(private readonly dir: string) {
    for (const name of readdirSync(dir)) this.note(name);
  }

  /** The partial files of every version of the key whose partial file is `name`. */
  of(name: string): string[] {
    return [...(this.byKey.get(keyPart(name)) ?? [])];
  }

  note(name: string): void {
    const key = keyPart(name);
    const names = this.byKey.get(key) ?? new Set<string>();
    names.add(name);
    this.byKey.set(key, names);
  }

  forget(name: string): void {
    const key = keyPart(name);
    const names = this.byKey.get(key);
    names?.delete(name);
    if (names?.size === 0) this.byKey.delete(key);
  }

  async remove(name: string): Promise<void> {
    await removeFile(join(this.dir, name));
    this.forget(name);
  }
}

/** What the partial files of one key share, whatever their version: the hash before the first dot. */
function keyPart(name: string): string {
  const dot = name.indexOf('.');
  return dot < 0 ? name : name.slice(0, dot);
}

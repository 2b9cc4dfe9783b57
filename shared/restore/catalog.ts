import { ConfigError } from '../errors.js';
import type { ManifestEntry } from '../engine/manifest.js';
import type { BackupManifest, BackupReader, RestoreSelection } from './types.js';

export interface Catalog {
  /** The manifest that describes the account as the backup last saw it (as of `asOf` when given). */
  manifest: BackupManifest;
  entries: ManifestEntry[];
}

function selected(entry: ManifestEntry, selection: RestoreSelection, ids: Set<string> | undefined): boolean {
  if (selection.prefix !== undefined && !entry.publicId.startsWith(selection.prefix)) return false;
  if (selection.resourceType !== undefined && entry.resourceType !== selection.resourceType) return false;
  if (selection.deliveryType !== undefined && entry.deliveryType !== selection.deliveryType) return false;
  return ids === undefined || ids.has(entry.publicId);
}

/** A manifest's entries, and whether it lists the whole library (a run that listed only changes does not). */
async function readRun(
  reader: BackupReader,
  manifest: BackupManifest,
): Promise<{ entries: ManifestEntry[]; complete: boolean }> {
  const entries: ManifestEntry[] = [];
  let complete = false;
  for await (const entry of reader.readManifest(manifest.key)) {
    entries.push(entry);
    if (entry.listing !== 'changes') complete = true;
  }
  return { entries, complete };
}

/**
 * The assets to restore, with their metadata from the manifests. By default the library as the
 * backup last saw it: the latest complete listing's manifest with the change listings after it
 * applied in order. `deletedOnly`: assets an earlier manifest lists and that library does not,
 * i.e. what a complete listing found deleted at the source, each with the metadata of the last
 * manifest that listed it.
 */
export async function buildCatalog(reader: BackupReader, selection: RestoreSelection): Promise<Catalog> {
  const all = await reader.manifests();
  const asOf = selection.asOf;
  const usable = asOf === undefined ? all : all.filter((m) => m.runAt.getTime() <= asOf.getTime());
  const latest = usable.at(-1);
  if (latest === undefined) {
    throw new ConfigError(
      all.length === 0
        ? `${reader.description} holds no completed backup (no manifests/<run>/manifest.jsonl.gz): run a backup first, or name another source.`
        : `${reader.description} has no completed backup on or before ${asOf?.toISOString()}; the first is from ${all[0]?.runAt.toISOString()}.`,
    );
  }
  // Back from the latest run to the last complete listing; the change listings after it apply on top.
  const runs: ManifestEntry[][] = [];
  let base = usable.length - 1;
  for (; base >= 0; base--) {
    const run = await readRun(reader, usable[base] as BackupManifest);
    runs.unshift(run.entries);
    if (run.complete) break;
  }
  const library = new Map<string, ManifestEntry>();
  for (const entries of runs) for (const entry of entries) library.set(entry.id, entry);

  const ids = selection.publicIds?.length ? new Set(selection.publicIds) : undefined;
  if (!selection.deletedOnly) {
    return { manifest: latest, entries: [...library.values()].filter((e) => selected(e, selection, ids)) };
  }
  const deleted = new Map<string, ManifestEntry>();
  for (const earlier of usable.slice(0, Math.max(base, 0)).reverse()) {
    for await (const entry of reader.readManifest(earlier.key)) {
      if (!library.has(entry.id) && !deleted.has(entry.id) && selected(entry, selection, ids)) {
        deleted.set(entry.id, entry);
      }
    }
  }
  return { manifest: latest, entries: [...deleted.values()] };
}

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

/**
 * The assets to restore, with their metadata from the manifests. By default the latest manifest (the
 * account as the last complete backup listed it). `deletedOnly`: assets an earlier manifest lists and
 * the latest does not, i.e. what that backup marked deleted at the source, each with the metadata of
 * the last manifest that listed it.
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
  const ids = selection.publicIds?.length ? new Set(selection.publicIds) : undefined;
  const current = new Map<string, ManifestEntry>();
  for await (const entry of reader.readManifest(latest.key)) {
    if (selected(entry, selection, ids)) current.set(entry.id, entry);
  }
  if (!selection.deletedOnly) return { manifest: latest, entries: [...current.values()] };

  const present = new Set<string>();
  for await (const entry of reader.readManifest(latest.key)) present.add(entry.id);
  const deleted = new Map<string, ManifestEntry>();
  for (const earlier of usable.slice(0, -1).reverse()) {
    for await (const entry of reader.readManifest(earlier.key)) {
      if (!present.has(entry.id) && !deleted.has(entry.id) && selected(entry, selection, ids)) {
        deleted.set(entry.id, entry);
      }
    }
  }
  return { manifest: latest, entries: [...deleted.values()] };
}

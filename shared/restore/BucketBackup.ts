import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import { MANIFESTS_PREFIX, META } from '../constants.js';
import { S3ObjectStore } from '../aws/S3ObjectStore.js';
import { RetryableError } from '../errors.js';
import { readManifest, type ManifestEntry } from '../engine/manifest.js';
import { finalManifests } from './manifests.js';
import type { BackupManifest, BackupReader, LocatedCopy } from './types.js';

/**
 * The backup bucket. The current objects by default; with `asOf`, the object version that was
 * current at that date, from the bucket's version history (ListObjectVersions; the bucket is versioned).
 */
export class BucketBackup implements BackupReader {
  readonly description: string;
  private readonly store: S3ObjectStore;

  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
  ) {
    this.description = `s3://${bucket}`;
    this.store = new S3ObjectStore({ s3, bucket });
  }

  async manifests(): Promise<BackupManifest[]> {
    const keys: string[] = [];
    for await (const object of this.store.list(MANIFESTS_PREFIX)) keys.push(object.key);
    return finalManifests(keys);
  }

  readManifest(key: string): AsyncIterable<ManifestEntry> {
    return readManifest(this.store, key);
  }

  async locate(objectKey: string, asOf?: Date): Promise<LocatedCopy | undefined> {
    if (asOf === undefined) {
      const head = await this.store.head(objectKey);
      if (!head) return undefined;
      return { bytes: head.bytes, md5: head.md5, ...versionOf(head.metadata) };
    }
    const versionId = await this.versionAt(objectKey, asOf);
    if (versionId === undefined) return undefined;
    const head = await this.s3.send(
      new HeadObjectCommand({ Bucket: this.bucket, Key: objectKey, VersionId: versionId }),
    );
    const metadata = head.Metadata ?? {};
    return {
      bytes: head.ContentLength ?? 0,
      md5: metadata[META.md5],
      versionId,
      ...versionOf(metadata),
    };
  }

  /** The newest version of exactly `key` written at or before `asOf` (undefined if that was a deletion). */
  private async versionAt(key: string, asOf: Date): Promise<string | undefined> {
    let best: { id: string; at: number; deleted: boolean } | undefined;
    let keyMarker: string | undefined;
    let versionMarker: string | undefined;
    do {
      const page = await this.s3.send(
        new ListObjectVersionsCommand({
          Bucket: this.bucket,
          Prefix: key,
          KeyMarker: keyMarker,
          VersionIdMarker: versionMarker,
        }),
      );
      const candidates = [
        ...(page.Versions ?? []).map((v) => ({ ...v, deleted: false })),
        ...(page.DeleteMarkers ?? []).map((v) => ({ ...v, deleted: true })),
      ];
      for (const v of candidates) {
        const at = v.LastModified?.getTime() ?? 0;
        if (v.Key !== key || v.VersionId === undefined || at > asOf.getTime()) continue;
        if (best === undefined || at > best.at) best = { id: v.VersionId, at, deleted: v.deleted };
      }
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      versionMarker = page.IsTruncated ? page.NextVersionIdMarker : undefined;
    } while (keyMarker !== undefined);
    return best && !best.deleted ? best.id : undefined;
  }

  async open(objectKey: string, copy: LocatedCopy): Promise<Readable> {
    if (copy.versionId === undefined) return this.store.get(objectKey);
    const found = await this.s3.send(
      new GetObjectCommand({ Bucket: this.bucket, Key: objectKey, VersionId: copy.versionId }),
    );
    if (!(found.Body instanceof Readable))
      throw new RetryableError(`S3 returned no readable body for ${objectKey}`);
    return found.Body;
  }

  close(): void {}
}

function versionOf(metadata: Record<string, string>): { version?: number } {
  const version = Number(metadata[META.version]);
  return Number.isFinite(version) && version > 0 ? { version } : {};
}

import { RESOURCE_TYPES } from '../constants.js';
import type { AssetRef, ResourceType, SourceAsset } from '../types.js';

/**
 * What one notification asks of the backup. Payload shapes follow Cloudinary's notifications page
 * (https://cloudinary.com/documentation/notifications): `upload` carries the asset as the upload
 * API answers it; `delete` and the change types carry a `resources` list; `rename` carries
 * `from_public_id` and `to_public_id`. Where the docs are silent (a rename's version and bytes, a
 * delete's version), the fields are optional and the handler copes without them.
 */
export type WebhookAction =
  | { kind: 'copy'; asset: SourceAsset }
  | { kind: 'delete'; ref: AssetRef; version?: number }
  | {
      kind: 'rename';
      from: AssetRef;
      to: AssetRef;
      assetId?: string;
      /** What the notification tells of the asset; the rest comes from the old id's state. */
      known: Partial<Pick<SourceAsset, 'version' | 'bytes' | 'etag' | 'format' | 'createdAt' | 'secureUrl'>>;
    }
  | { kind: 'change'; ref: AssetRef; field: ChangeField; change: Record<string, unknown> };

export type ChangeField = 'tags' | 'context' | 'metadata';

/** The event types the stack registers (one trigger each), and the notification_type each answers to. */
export const WEBHOOK_EVENT_TYPES = [
  'upload',
  'delete',
  'rename',
  'resource_tags_changed',
  'resource_context_changed',
] as const;

const CHANGE_TYPES: Record<string, ChangeField> = {
  resource_tags_changed: 'tags',
  resource_context_changed: 'context',
  resource_metadata_changed: 'metadata',
};

/** A body that is JSON but not a notification we can act on. */
export class NotificationShapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotificationShapeError';
  }
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function positive(value: unknown): number | undefined {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) && n >= 0 ? n : undefined;
}

function resourceType(value: unknown): ResourceType | undefined {
  return (RESOURCE_TYPES as readonly string[]).includes(String(value)) ? (value as ResourceType) : undefined;
}

function refOf(entry: Json, publicIdField = 'public_id'): AssetRef {
  const rt = resourceType(entry.resource_type);
  const publicId = text(entry[publicIdField]);
  if (!rt || !publicId) {
    throw new NotificationShapeError(`a resource lacks resource_type or ${publicIdField}`);
  }
  return { resourceType: rt, deliveryType: text(entry.type) ?? 'upload', publicId };
}

/** Resources named by a delete or change notification: a `resources` list, or the fields at top level. */
function resourcesOf(payload: Json): Json[] {
  const list = payload.resources;
  if (Array.isArray(list)) return list.filter(isObject);
  return [payload];
}

function uploadedAsset(payload: Json): SourceAsset {
  const ref = refOf(payload);
  const version = positive(payload.version);
  const bytes = positive(payload.bytes);
  const assetId = text(payload.asset_id);
  if (version === undefined || bytes === undefined || !assetId) {
    throw new NotificationShapeError('an upload notification lacks asset_id, version or bytes');
  }
  return {
    ...ref,
    assetId,
    version,
    bytes,
    format: text(payload.format),
    etag: text(payload.etag),
    createdAt: text(payload.created_at) ?? new Date(version * 1000).toISOString(),
    secureUrl: text(payload.secure_url),
  };
}

/** Reads a parsed notification body into actions; unknown notification types ask for nothing. */
export function actionsOf(payload: unknown): WebhookAction[] {
  if (!isObject(payload)) throw new NotificationShapeError('the body is not a JSON object');
  const type = text(payload.notification_type);
  if (!type) throw new NotificationShapeError('the body has no notification_type');
  if (type === 'upload') return [{ kind: 'copy', asset: uploadedAsset(payload) }];
  if (type === 'delete') {
    return resourcesOf(payload).map((entry) => ({
      kind: 'delete',
      ref: refOf(entry),
      ...(positive(entry.version) !== undefined ? { version: positive(entry.version) } : {}),
    }));
  }
  if (type === 'rename') {
    const from = refOf(payload, 'from_public_id');
    const to = refOf(payload, 'to_public_id');
    return [
      {
        kind: 'rename',
        from,
        to,
        assetId: text(payload.asset_id),
        known: {
          version: positive(payload.version),
          bytes: positive(payload.bytes),
          etag: text(payload.etag),
          format: text(payload.format),
          createdAt: text(payload.created_at),
          secureUrl: text(payload.secure_url),
        },
      },
    ];
  }
  const field = CHANGE_TYPES[type];
  if (field) {
    return resourcesOf(payload).map((entry) => {
      const { added, removed, updated } = entry;
      return { kind: 'change', ref: refOf(entry), field, change: { added, removed, updated } };
    });
  }
  return [];
}

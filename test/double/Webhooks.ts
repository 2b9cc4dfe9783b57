import { createHash, randomBytes } from 'node:crypto';
import { BadRequest, NotFound } from './errors.js';
import type { Library } from './Library.js';
import { detailsItem, type DeliveryBase } from './render.js';
import type { AssetSpec, DoubleAsset, ResourceType } from './types.js';

/**
 * Triggers and webhook notifications, as Cloudinary documents them:
 * - Triggers (https://cloudinary.com/documentation/admin_api#triggers; /work/shared/CLOUDINARY.md
 *   "Incremental listing, renames, webhooks"): `GET /triggers`, `POST /triggers` with `uri` and
 *   `event_type`, `DELETE /triggers/<id>`; one trigger pairs one event type with one URL, `all` matches any.
 * - Notifications (https://cloudinary.com/documentation/notifications, notification_signatures): a JSON
 *   POST with `X-Cld-Timestamp` and `X-Cld-Signature` = hex SHA-1 (or SHA-256) of body + timestamp +
 *   api_secret. A POST not answered 200 is retried about three times over roughly ten minutes.
 * Unconfirmed, chosen here: a retry resends the first try's body, timestamp and signature (the
 * receiver must accept both readings); retries come 3, 6 and 9 minutes after the first try, on the
 * double's clock, when a test calls `deliverDue()`; creating a pair that exists already is a 400.
 */
export const EVENT_TYPES = [
  'all',
  'upload',
  'delete',
  'rename',
  'resource_tags_changed',
  'resource_context_changed',
  'resource_metadata_changed',
] as const;

/** When the retries of an unanswered notification are due, after its first try. */
export const RETRY_AFTER_MS = [3 * 60_000, 6 * 60_000, 9 * 60_000] as const;

export interface Trigger {
  id: string;
  uri: string;
  event_type: string;
  created_at: string;
  updated_at: string;
}

/** One POST the double made: where, which try, and what came back (status 0: no answer). */
export interface DeliveryAttempt {
  uri: string;
  notificationType: string;
  attempt: number;
  status: number;
  at: Date;
}

interface Pending {
  uri: string;
  notificationType: string;
  body: string;
  timestamp: string;
  signature: string;
  firstAt: number;
  tries: number;
}

type Json = Record<string, unknown>;

export class Webhooks {
  #triggers = new Map<string, Trigger>();
  #pending: Pending[] = [];
  /** Every POST made, oldest first. */
  readonly attempts: DeliveryAttempt[] = [];

  constructor(
    private readonly library: Library,
    private readonly base: DeliveryBase,
    private readonly now: () => Date,
    private readonly apiSecret: string,
    /** `signature_algorithm` of the account: sha1 unless it was limited to SHA-256. */
    public algorithm: 'sha1' | 'sha256' = 'sha1',
  ) {}

  // ---- the triggers endpoints ------------------------------------------------------------

  /** `GET /triggers` */
  list(): Json {
    return { triggers: [...this.#triggers.values()] };
  }

  /** `POST /triggers` */
  create(params: Json): Json {
    const uri = typeof params.uri === 'string' ? params.uri : '';
    const eventType = typeof params.event_type === 'string' ? params.event_type : '';
    if (!/^https?:\/\/\S+$/u.test(uri)) throw new BadRequest('uri must be an http(s) URL');
    if (!(EVENT_TYPES as readonly string[]).includes(eventType)) {
      throw new BadRequest(`Invalid event_type ${eventType}`);
    }
    for (const trigger of this.#triggers.values()) {
      if (trigger.uri === uri && trigger.event_type === eventType) {
        throw new BadRequest(`A trigger for ${eventType} to this uri already exists`);
      }
    }
    const at = this.now().toISOString();
    const trigger: Trigger = {
      id: randomBytes(16).toString('hex'),
      uri,
      event_type: eventType,
      created_at: at,
      updated_at: at,
    };
    this.#triggers.set(trigger.id, trigger);
    return { ...trigger };
  }

  /** `DELETE /triggers/<id>` */
  remove(id: string): Json {
    if (!this.#triggers.delete(id)) throw new NotFound(`Trigger ${id} not found`);
    return { message: 'ok' };
  }

  // ---- changes that notify ----------------------------------------------------------------

  /** A new upload, announced as `upload`. */
  async upload(spec: AssetSpec): Promise<DoubleAsset> {
    const asset = this.library.add(spec);
    await this.notify('upload', await this.uploadPayload(asset, false));
    return asset;
  }

  /** An overwrite: an `upload` notification of the new version (with `overwritten: true`). */
  async overwrite(
    resourceType: ResourceType,
    type: string,
    publicId: string,
    bytes?: number,
  ): Promise<DoubleAsset> {
    const asset = this.library.overwrite(resourceType, type, publicId, bytes);
    await this.notify('upload', await this.uploadPayload(asset, true));
    return asset;
  }

  async delete(resourceType: ResourceType, type: string, publicId: string): Promise<void> {
    const asset = this.library.get(resourceType, type, publicId);
    if (!asset) throw new Error(`no asset ${resourceType}/${type}/${publicId}`);
    this.library.delete(resourceType, type, publicId);
    await this.notify('delete', {
      notification_type: 'delete',
      resources: [
        {
          resource_type: resourceType,
          type,
          asset_id: asset.asset_id,
          public_id: publicId,
          version: asset.version,
        },
      ],
    });
  }

  async rename(resourceType: ResourceType, type: string, from: string, to: string): Promise<DoubleAsset> {
    const asset = this.library.rename(resourceType, type, from, to);
    await this.notify('rename', {
      notification_type: 'rename',
      resource_type: resourceType,
      type,
      asset_id: asset.asset_id,
      from_public_id: from,
      to_public_id: to,
    });
    return asset;
  }

  /** Signs `payload` and POSTs it to every trigger of its type (or `all`); unanswered POSTs wait for `deliverDue`. */
  async notify(notificationType: string, payload: Json): Promise<DeliveryAttempt[]> {
    const body = JSON.stringify({ ...payload, notification_type: notificationType });
    const timestamp = String(Math.floor(this.now().getTime() / 1000));
    const signature = createHash(this.algorithm)
      .update(body + timestamp + this.apiSecret)
      .digest('hex');
    const uris = new Set(
      [...this.#triggers.values()]
        .filter((t) => t.event_type === notificationType || t.event_type === 'all')
        .map((t) => t.uri),
    );
    const made: DeliveryAttempt[] = [];
    for (const uri of uris) {
      const pending: Pending = {
        uri,
        notificationType,
        body,
        timestamp,
        signature,
        firstAt: this.now().getTime(),
        tries: 0,
      };
      made.push(await this.#post(pending));
    }
    return made;
  }

  /** POSTs every retry that is due on the double's clock; returns what they got. */
  async deliverDue(): Promise<DeliveryAttempt[]> {
    const now = this.now().getTime();
    const due = this.#pending.filter((p) => p.firstAt + (RETRY_AFTER_MS[p.tries - 1] ?? Infinity) <= now);
    this.#pending = this.#pending.filter((p) => !due.includes(p));
    const made: DeliveryAttempt[] = [];
    for (const pending of due) made.push(await this.#post(pending));
    return made;
  }

  /** Notifications still waiting for a retry. */
  get pendingCount(): number {
    return this.#pending.length;
  }

  async #post(pending: Pending): Promise<DeliveryAttempt> {
    pending.tries += 1;
    let status: number;
    try {
      const answer = await fetch(pending.uri, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-cld-timestamp': pending.timestamp,
          'x-cld-signature': pending.signature,
        },
        body: pending.body,
        // A guard against a hung receiver, not a timing the tests rely on.
        signal: AbortSignal.timeout(60_000),
      });
      status = answer.status;
      await answer.arrayBuffer();
    } catch {
      status = 0;
    }
    const attempt: DeliveryAttempt = {
      uri: pending.uri,
      notificationType: pending.notificationType,
      attempt: pending.tries,
      status,
      at: this.now(),
    };
    this.attempts.push(attempt);
    if (status !== 200 && pending.tries <= RETRY_AFTER_MS.length) this.#pending.push(pending);
    return attempt;
  }

  private async uploadPayload(asset: DoubleAsset, overwritten: boolean): Promise<Json> {
    const etag = await this.library.md5Of(asset);
    const details = detailsItem(this.base, asset, etag, false);
    delete details.last_updated;
    delete details.derived;
    return {
      notification_type: 'upload',
      timestamp: this.now().toISOString(),
      request_id: randomBytes(16).toString('hex'),
      ...details,
      ...(overwritten ? { overwritten: true } : {}),
    };
  }
}

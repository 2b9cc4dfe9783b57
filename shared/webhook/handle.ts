import { mapLimit } from '../concurrency.js';
import type { EngineSettings } from '../config.js';
import { WEBHOOK_RUN_ID } from '../constants.js';
import { describeError } from '../errors.js';
import { assetIdOf } from '../keys.js';
import { silentLog, type Log } from '../engine/log.js';
import type { AssetRef, AssetState, SourceAsset, StateStore, WorkQueue } from '../types.js';
import { actionsOf, NotificationShapeError, type WebhookAction } from './notification.js';
import { verifyNotification, type SignatureAlgorithm } from './signature.js';
import type { NotificationLedger } from './types.js';

/**
 * Largest body read. Cloudinary's largest notifications are deletions of many assets (a few
 * hundred bytes each); a bigger body is refused before it is hashed or parsed.
 */
export const MAX_BODY_BYTES = 1024 * 1024;

export interface WebhookDeps {
  apiSecret: string;
  algorithm: SignatureAlgorithm;
  state: Pick<StateStore, 'getMany' | 'markDeleted'>;
  queue: Pick<WorkQueue, 'sendBatch'>;
  ledger: NotificationLedger;
  /** Only these resource and delivery types are backed up; others are ignored. */
  settings: Pick<EngineSettings, 'resourceTypes' | 'deliveryTypes'>;
  now?: () => Date;
  log?: Log;
  /** Called once work is on the queue: where a consumer that idles can be woken. */
  onEnqueued?: (count: number) => Promise<void>;
}

export interface WebhookRequest {
  method: string;
  /** Header names in lower case, as Lambda function URLs give them. */
  headers: Record<string, string | undefined>;
  /** The raw bytes as sent: the signature covers them, never a re-serialisation. */
  body: Buffer;
}

export type ActionOutcome =
  'enqueued' | 'deleted' | 'renamed' | 'recorded' | 'stale' | 'duplicate' | 'ignored';

export interface WebhookResponse {
  status: number;
  body: string;
  outcomes: ActionOutcome[];
}

const CONCURRENCY = 16;

function answer(status: number, message: string, outcomes: ActionOutcome[] = []): WebhookResponse {
  return { status, body: JSON.stringify({ message, outcomes }), outcomes };
}

/**
 * Verifies one notification and turns it into queue messages and state records, never copying
 * anything itself. 200 once every action is done or known to be unnecessary; 401/413/405 for what
 * must not be retried into success; 500 when AWS failed, so Cloudinary's retry tries again (every
 * action is idempotent).
 */
export async function handleNotification(
  deps: WebhookDeps,
  request: WebhookRequest,
): Promise<WebhookResponse> {
  const log = deps.log ?? silentLog;
  const now = (deps.now ?? (() => new Date()))();
  if (request.method !== 'POST') return answer(405, 'POST a Cloudinary notification');
  if (request.body.length > MAX_BODY_BYTES) {
    log.warn('notification rejected', { reason: 'too-large', bytes: request.body.length });
    return answer(413, `the body is over ${MAX_BODY_BYTES} bytes`);
  }
  const timestamp = request.headers['x-cld-timestamp'];
  const verdict = verifyNotification(
    { body: request.body, timestamp, signature: request.headers['x-cld-signature'] },
    deps.apiSecret,
    deps.algorithm,
    now,
  );
  if (verdict !== 'valid') {
    // Neither the body nor the signature is logged: only why and how big.
    log.warn('notification rejected', { reason: verdict, bytes: request.body.length });
    return answer(401, 'not a validly signed, recent Cloudinary notification');
  }
  const at = Number(timestamp);
  let actions: WebhookAction[];
  try {
    actions = actionsOf(JSON.parse(request.body.toString('utf8')));
  } catch (error) {
    // Signed by Cloudinary yet unreadable: a retry would not help, the daily reconciliation will.
    const reason = error instanceof NotificationShapeError ? error.message : 'the body is not JSON';
    log.error('signed notification not understood', { reason });
    return answer(200, `ignored: ${reason}`);
  }
  try {
    const outcomes = await mapLimit(actions, CONCURRENCY, (action) => apply(deps, action, at, log));
    const enqueued = outcomes.filter((o) => o === 'enqueued').length;
    if (enqueued > 0) await deps.onEnqueued?.(enqueued);
    log.info('notification handled', { outcomes });
    return answer(200, 'ok', outcomes);
  } catch (error) {
    log.error('notification not handled; Cloudinary retries it', { error: describeError(error) });
    return answer(500, 'could not record the notification; it will be retried');
  }
}

function backedUp(deps: WebhookDeps, ref: AssetRef): boolean {
  return (
    deps.settings.resourceTypes.includes(ref.resourceType) &&
    deps.settings.deliveryTypes.includes(ref.deliveryType)
  );
}

async function apply(deps: WebhookDeps, action: WebhookAction, at: number, log: Log): Promise<ActionOutcome> {
  switch (action.kind) {
    case 'copy':
      return copy(deps, action.asset, at);
    case 'delete': {
      if (!backedUp(deps, action.ref)) return 'ignored';
      return (await remove(deps, action.ref, { at, version: action.version })) ? 'deleted' : 'stale';
    }
    case 'rename':
      return rename(deps, action, at, log);
    case 'change': {
      if (!backedUp(deps, action.ref)) return 'ignored';
      const kept = await deps.ledger.recordChange(assetIdOf(action.ref), action.field, at, action.change);
      return kept ? 'recorded' : 'stale';
    }
  }
}

/** Enqueues a version unless the state or the ledger already holds it or a newer one. */
async function copy(deps: WebhookDeps, asset: SourceAsset, at: number): Promise<ActionOutcome> {
  if (!backedUp(deps, asset)) return 'ignored';
  const id = assetIdOf(asset);
  const state = (await deps.state.getMany([id])).get(id);
  if (state && state.version > asset.version) return 'stale';
  if (state && state.version === asset.version && state.status === 'replicated') return 'duplicate';
  if (!(await deps.ledger.claimVersion(id, asset.version, at))) return 'stale';
  await deps.queue.sendBatch([{ runId: WEBHOOK_RUN_ID, asset }]);
  await deps.ledger.markQueued(id, asset.version);
  return 'enqueued';
}

async function remove(
  deps: WebhookDeps,
  ref: AssetRef,
  removal: { at: number; version?: number; renamedTo?: string },
): Promise<boolean> {
  const id = assetIdOf(ref);
  const clean = Object.fromEntries(
    Object.entries(removal).filter(([, v]) => v !== undefined),
  ) as typeof removal;
  if (!(await deps.ledger.claimRemoval(id, clean))) return false;
  await deps.state.markDeleted([id], new Date(removal.at * 1000).toISOString());
  return true;
}

/** The format of a copy, read back from its object key (`….<format>`); raw keys carry none. */
function formatOf(state: AssetState): string | undefined {
  if (state.resourceType === 'raw') return undefined;
  const last = state.objectKey.split('/').at(-1) ?? '';
  const dot = last.lastIndexOf('.');
  return dot > 0 ? decodeURIComponent(last.slice(dot + 1)) : undefined;
}

/**
 * A rename keeps asset_id, version and bytes: the new public id is enqueued as a normal work item
 * (the engine copies inside the store when asset_id and MD5 match), the old one recorded as renamed.
 */
async function rename(
  deps: WebhookDeps,
  action: Extract<WebhookAction, { kind: 'rename' }>,
  at: number,
  log: Log,
): Promise<ActionOutcome> {
  const fromId = assetIdOf(action.from);
  const old = (await deps.state.getMany([fromId])).get(fromId);
  const version = action.known.version ?? old?.version;
  const bytes = action.known.bytes ?? old?.bytes;
  const assetId = action.assetId ?? old?.assetId;
  let outcome: ActionOutcome = 'renamed';
  if (version === undefined || bytes === undefined || !assetId) {
    // Nothing known of the asset: the daily reconciliation lists it under its new id.
    log.warn('rename of an asset not backed up yet; the next full run copies it', {
      to: assetIdOf(action.to),
    });
    outcome = 'ignored';
  } else {
    const copied = await copy(
      deps,
      {
        ...action.to,
        assetId,
        version,
        bytes,
        etag: action.known.etag ?? old?.md5,
        format: action.known.format ?? (old ? formatOf(old) : undefined),
        createdAt: action.known.createdAt ?? new Date(version * 1000).toISOString(),
        secureUrl: action.known.secureUrl,
      },
      at,
    );
    if (copied === 'stale') outcome = 'stale';
  }
  if (backedUp(deps, action.from)) await remove(deps, action.from, { at, renamedTo: assetIdOf(action.to) });
  return outcome;
}

import { mapLimit } from '../concurrency.js';
import { backoff, errorName, isTransientAwsError, sleep } from './awsErrors.js';
import {
  BatchGetItemCommand,
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
  UpdateItemCommand,
  type AttributeValue,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { convertToAttr, marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import {
  ConfigError,
  FatalError,
  ReplicatorError,
  RetryableError,
  StaleRunError,
  describeError,
  dispositionOf,
  etagMismatch,
} from '../errors.js';
import { assetIdOf } from '../keys.js';
import { checkpointFromItem, checkpointKey, checkpointToItem } from './copyCheckpoints.js';
import { findByAssetId, markRenamed, type AssetIdIndexAccess } from './dynamoAssetIdIndex.js';
import type {
  AssetRef,
  AssetState,
  AssetStatus,
  CopyCheckpoint,
  ListingCapabilities,
  FailureDetails,
  ListingProgress,
  RunCounters,
  RunCoverage,
  RunRecord,
  StateStore,
} from '../types.js';

type Item = Record<string, AttributeValue>;

const ASSET_PREFIX = 'ASSET#';
const ASSET_SORT_KEY = 'STATE';
const RUN_PARTITION = 'RUN';
/** BatchGetItem's limit on keys per request. */
export const BATCH_GET_LIMIT = 100;
const MAX_ERROR_CHARS = 1000;
const COUNTER_NAMES: readonly (keyof RunCounters)[] = [
  'listed',
  'enqueued',
  'skipped',
  'replicated',
  'failed',
  'deleted',
  'bytes',
  'adminCalls',
  'settled',
];

export interface DynamoStateStoreOptions {
  dynamo: DynamoDBClient;
  table: string;
  /** Tries of a BatchGetItem whose keys keep coming back unprocessed (default 8). */
  maxBatchAttempts?: number;
  /** First backoff delay in ms between those tries (default 50; doubles, with jitter). */
  backoffMs?: number;
  /** Clock for leases and record times (tests move it instead of waiting). */
  now?: () => Date;
}

/** Key of an asset's state item: `pk = ASSET#<resource_type>/<type>/<public_id>`, `sk = STATE`. */
export function assetKey(id: string): Item {
  return { pk: { S: `${ASSET_PREFIX}${id}` }, sk: { S: ASSET_SORT_KEY } };
}

/** Key of a run record: `pk = RUN`, `sk = <runId>` (run ids sort by start time). */
export function runKey(runId: string): Item {
  return { pk: { S: RUN_PARTITION }, sk: { S: runId } };
}

/** Fields left undefined are left out of the item, never written as NULL. */
const OMIT_UNDEFINED = { removeUndefinedValues: true } as const;

/**
 * StateStore on one DynamoDB table (`pk`, `sk` strings): asset states under `ASSET#<id>`/`STATE`
 * and run records under `RUN`/`<runId>`. Every change is a conditional write, so concurrent
 * workers and redelivered messages can never move an asset's version backwards.
 */
export class DynamoStateStore implements StateStore {
  readonly table: string;
  private readonly dynamo: DynamoDBClient;
  private readonly maxBatchAttempts: number;
  private readonly backoffMs: number;
  private readonly now: () => Date;

  constructor(options: DynamoStateStoreOptions) {
    if (!options.table) throw new ConfigError('DynamoStateStore needs a table name');
    this.dynamo = options.dynamo;
    this.table = options.table;
    this.maxBatchAttempts = options.maxBatchAttempts ?? 8;
    this.backoffMs = options.backoffMs ?? 50;
    this.now = options.now ?? (() => new Date());
  }

  async getMany(ids: string[], options: { consistent?: boolean } = {}): Promise<Map<string, AssetState>> {
    const unique = [...new Set(ids)];
    const found = new Map<string, AssetState>();
    const chunks: string[][] = [];
    for (let i = 0; i < unique.length; i += BATCH_GET_LIMIT)
      chunks.push(unique.slice(i, i + BATCH_GET_LIMIT));
    await mapLimit(chunks, 4, async (chunk) => {
      for (const item of await this.batchGet(chunk.map(assetKey), options.consistent ?? true)) {
        const state = assetFromItem(item);
        if (state) found.set(state.id, state);
      }
    });
    return found;
  }

  async recordReplicated(state: AssetState): Promise<boolean> {
    const stored: AssetState = {
      ...state,
      replicatedAt: state.replicatedAt ?? this.now().toISOString(),
      status: 'replicated',
      attempts: 0,
      lastError: undefined,
      failedVersion: undefined,
    };
    // A put replaces the whole item, which also drops any lease and failure details.
    return this.conditional(() =>
      this.dynamo.send(
        new PutItemCommand({
          TableName: this.table,
          Item: { ...assetKey(state.id), ...assetItem(stored) },
          ConditionExpression:
            'attribute_not_exists(#status) OR #version < :version OR (#version = :version AND #status <> :replicated)',
          ExpressionAttributeNames: { '#status': 'status', '#version': 'version' },
          ExpressionAttributeValues: {
            ':version': { N: String(state.version) },
            ':replicated': { S: 'replicated' },
          },
        }),
      ),
    );
  }

  async acquireLease(
    ref: AssetRef,
    version: number,
    owner: string,
    ttlMs: number,
  ): Promise<'acquired' | 'done' | 'busy'> {
    const now = this.now().getTime();
    const key = assetKey(assetIdOf(ref));
    try {
      await this.dynamo.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: key,
          UpdateExpression: 'SET #leaseOwner = :owner, #leaseUntil = :until',
          ConditionExpression:
            'NOT (#status = :replicated AND #version >= :version) AND ' +
            '(attribute_not_exists(#leaseUntil) OR #leaseUntil < :now OR #leaseOwner = :owner)',
          ExpressionAttributeNames: {
            '#status': 'status',
            '#version': 'version',
            '#leaseOwner': 'leaseOwner',
            '#leaseUntil': 'leaseUntil',
          },
          ExpressionAttributeValues: {
            ':owner': { S: owner },
            ':until': { N: String(now + ttlMs) },
            ':now': { N: String(now) },
            ':version': { N: String(version) },
            ':replicated': { S: 'replicated' },
          },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return 'acquired';
    } catch (error) {
      if (errorName(error) !== 'ConditionalCheckFailedException') throw this.classify(error);
      const item = (error as { Item?: Item }).Item ?? (await this.getItem(key));
      const status = item?.status?.S;
      const stored = Number(item?.version?.N ?? Number.NaN);
      return status === 'replicated' && stored >= version ? 'done' : 'busy';
    }
  }

  async recordFailure(
    ref: AssetRef & { version: number; bytes: number; objectKey: string },
    error: string,
    owner?: string,
    details: FailureDetails = {},
  ): Promise<void> {
    const id = assetIdOf(ref);
    const lastError = error.length > MAX_ERROR_CHARS ? `${error.slice(0, MAX_ERROR_CHARS - 1)}…` : error;
    const names: Record<string, string> = {
      '#version': 'version',
      '#replicatedAt': 'replicatedAt',
      '#failedVersion': 'failedVersion',
      '#lastError': 'lastError',
      '#attempts': 'attempts',
    };
    const common: Item = {
      ':version': { N: String(ref.version) },
      ':lastError': { S: lastError },
      ':one': { N: '1' },
    };
    // Optional parts of both writes: the distinct errors, and a quarantine beside a held copy.
    let extra = '';
    if (details.errors?.length) {
      names['#errors'] = 'errors';
      common[':errors'] = convertToAttr(details.errors, OMIT_UNDEFINED);
      extra += ', #errors = :errors';
    }
    // Beside a held copy: quarantine this version, or (a failure that may pass) lift an earlier quarantine.
    const quarantineNames = {
      '#quarantinedVersion': 'quarantinedVersion',
      '#quarantinedBytes': 'quarantinedBytes',
    };
    const besideCopy: { set: string; remove: string; values: Item } = details.quarantine
      ? {
          set: ', #quarantinedVersion = :version, #quarantinedBytes = :bytes',
          remove: '',
          values: { ':bytes': { N: String(ref.bytes) } },
        }
      : { set: '', remove: ' REMOVE #quarantinedVersion, #quarantinedBytes', values: {} };
    // Two disjoint cases, each one atomic write: we hold an older copy, or we hold none.
    const keepCopy = () =>
      this.dynamo.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: assetKey(id),
          UpdateExpression: `SET #failedVersion = :version, #lastError = :lastError${extra}${besideCopy.set}${besideCopy.remove} ADD #attempts :one`,
          ConditionExpression: 'attribute_exists(#replicatedAt) AND #version < :version',
          ExpressionAttributeNames: { ...names, ...quarantineNames },
          ExpressionAttributeValues: { ...common, ...besideCopy.values },
        }),
      );
    const noCopy = () => {
      const fields = marshall(
        {
          id,
          resourceType: ref.resourceType,
          deliveryType: ref.deliveryType,
          publicId: ref.publicId,
          bytes: ref.bytes,
          objectKey: ref.objectKey,
        },
        OMIT_UNDEFINED,
      );
      const sets = Object.keys(fields).map((name, i) => [`#f${i}`, name, `:f${i}`] as const);
      return this.dynamo.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: assetKey(id),
          UpdateExpression:
            `SET #status = :failed, #version = :version, #failedVersion = :version, #lastError = :lastError${extra}, ` +
            `${sets.map(([n, , v]) => `${n} = ${v}`).join(', ')} ADD #attempts :one`,
          ConditionExpression:
            'attribute_not_exists(#status) OR (attribute_not_exists(#replicatedAt) AND #version <= :version)',
          ExpressionAttributeNames: {
            ...names,
            '#status': 'status',
            ...Object.fromEntries(sets.map(([n, name]) => [n, name])),
          },
          ExpressionAttributeValues: {
            ...common,
            ':failed': { S: details.quarantine ? 'quarantined' : 'failed' },
            ...Object.fromEntries(sets.map(([, name, v]) => [v, fields[name] as AttributeValue])),
          },
        }),
      );
    };
    // The state can change between the two writes; a third look settles it. A failure for a
    // version older than (or equal to) the replicated one records nothing.
    for (let attempt = 0; attempt < 2; attempt++) {
      if (await this.conditional(keepCopy)) break;
      if (await this.conditional(noCopy)) break;
    }
    if (owner !== undefined) await this.freeLease(id, owner);
  }

  async markDeleted(ids: string[], at: string): Promise<void> {
    await mapLimit([...new Set(ids)], 8, (id) =>
      this.conditional(() =>
        this.dynamo.send(
          new UpdateItemCommand({
            TableName: this.table,
            Key: assetKey(id),
            UpdateExpression: 'SET #status = :deleted, #deletedAt = :at',
            // Only known assets, and the first date they were seen gone is kept.
            ConditionExpression: 'attribute_exists(#status) AND #status <> :deleted',
            ExpressionAttributeNames: { '#status': 'status', '#deletedAt': 'deletedAt' },
            ExpressionAttributeValues: { ':deleted': { S: 'deleted-at-source' }, ':at': { S: at } },
          }),
        ),
      ),
    );
  }

  async findByAssetId(assetId: string): Promise<AssetState[]> {
    return findByAssetId(this.indexAccess(), assetId);
  }

  async markRenamed(id: string, assetId: string, newId: string, at: string): Promise<void> {
    await markRenamed(this.indexAccess(), id, assetId, newId, at);
  }

  private indexAccess(): AssetIdIndexAccess {
    return {
      dynamo: this.dynamo,
      table: this.table,
      send: (call) => this.send(call),
      conditional: (write) => this.conditional(write),
      getMany: (ids) => this.getMany(ids),
      keyOf: assetKey,
      idOf: (key) => (key.pk?.S?.startsWith(ASSET_PREFIX) ? key.pk.S.slice(ASSET_PREFIX.length) : undefined),
    };
  }

  async checkEtag(
    ref: AssetRef,
    version: number,
    etag: string,
  ): Promise<'verified' | 'mismatch' | 'unchanged'> {
    const key = assetKey(assetIdOf(ref));
    const names = { '#status': 'status', '#version': 'version', '#md5': 'md5' };
    const values = {
      ':replicated': { S: 'replicated' },
      ':version': { N: String(version) },
      ':etag': { S: etag },
    };
    const verified = await this.conditional(() =>
      this.dynamo.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: key,
          UpdateExpression: 'SET #verifiedBy = :md5',
          ConditionExpression: '#status = :replicated AND #version = :version AND #md5 = :etag',
          ExpressionAttributeNames: { ...names, '#verifiedBy': 'verifiedBy' },
          ExpressionAttributeValues: { ...values, ':md5': { S: 'md5' } },
        }),
      ),
    );
    if (verified) return 'verified';
    const stored = await this.getItem(key);
    const mismatched = await this.conditional(() =>
      this.dynamo.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: key,
          UpdateExpression: 'SET #status = :failed, #lastError = :lastError',
          ConditionExpression:
            '#status = :replicated AND #version = :version AND (attribute_not_exists(#md5) OR #md5 <> :etag)',
          ExpressionAttributeNames: { ...names, '#lastError': 'lastError' },
          ExpressionAttributeValues: {
            ...values,
            ':failed': { S: 'failed' },
            ':lastError': { S: etagMismatch(stored?.md5?.S, etag) },
          },
        }),
      ),
    );
    return mismatched ? 'mismatch' : 'unchanged';
  }

  async *listAssets(options: { after?: string } = {}): AsyncIterable<AssetState> {
    // A Scan continues after any item's key: the id of the last state seen is a resumable cursor.
    let start: Item | undefined = options.after === undefined ? undefined : assetKey(options.after);
    do {
      const page = await this.send(() =>
        this.dynamo.send(
          new ScanCommand({
            TableName: this.table,
            ConsistentRead: true,
            ExclusiveStartKey: start,
            FilterExpression: 'begins_with(pk, :asset) AND attribute_exists(#status)',
            ExpressionAttributeNames: { '#status': 'status' },
            ExpressionAttributeValues: { ':asset': { S: ASSET_PREFIX } },
          }),
        ),
      );
      for (const item of page.Items ?? []) {
        const state = assetFromItem(item);
        if (state) yield state;
      }
      start = page.LastEvaluatedKey;
    } while (start);
  }

  async getRun(runId: string): Promise<RunRecord | undefined> {
    const item = await this.getItem(runKey(runId));
    return item ? runFromItem(item) : undefined;
  }

  async putRun(run: RunRecord, expectedUpdatedAt?: string): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const stored = await this.getItem(runKey(run.runId));
      if (expectedUpdatedAt !== undefined && stored?.updatedAt?.S !== expectedUpdatedAt) {
        throw new StaleRunError(run.runId);
      }
      const written = await this.conditional(() =>
        this.dynamo.send(this.runWrite(run, stored, expectedUpdatedAt)),
      );
      if (written) return;
      if (expectedUpdatedAt !== undefined) throw new StaleRunError(run.runId);
      // Created or removed by someone else between the read and the write: look again.
    }
    throw new RetryableError(`run ${run.runId} kept changing while it was written; try again`);
  }

  async latestRun(): Promise<RunRecord | undefined> {
    const page = await this.send(() =>
      this.dynamo.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :run',
          ExpressionAttributeValues: { ':run': { S: RUN_PARTITION } },
          ScanIndexForward: false,
          Limit: 1,
          ConsistentRead: true,
        }),
      ),
    );
    const item = page.Items?.[0];
    return item ? runFromItem(item) : undefined;
  }

  async addToRunCounters(runId: string, delta: Partial<RunCounters>): Promise<void> {
    const entries = COUNTER_NAMES.flatMap((name) => {
      const value = delta[name];
      return value ? [[name, value] as const] : [];
    });
    if (entries.length === 0) return;
    const added = await this.conditional(() =>
      this.dynamo.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: runKey(runId),
          UpdateExpression: `SET ${entries.map((_, i) => `#c.#k${i} = if_not_exists(#c.#k${i}, :zero) + :v${i}`).join(', ')}`,
          ConditionExpression: 'attribute_exists(#c)',
          ExpressionAttributeNames: {
            '#c': 'counters',
            ...Object.fromEntries(entries.map(([name], i) => [`#k${i}`, name])),
          },
          ExpressionAttributeValues: {
            ':zero': { N: '0' },
            ...Object.fromEntries(entries.map(([, value], i) => [`:v${i}`, { N: String(value) }])),
          },
        }),
      ),
    );
    if (!added)
      throw new FatalError(`run ${runId} has no record in table "${this.table}"; cannot count into it`);
  }

  /** The run write: creates the item, or updates it raising each counter that grew. */
  private runWrite(run: RunRecord, stored: Item | undefined, expectedUpdatedAt: string | undefined) {
    const names: Record<string, string> = {};
    const values: Item = {};
    const sets: string[] = [];
    const removes: string[] = [];
    const fields: Record<string, unknown> = {
      runId: run.runId,
      phase: run.phase,
      listings: run.listings,
      startedAt: run.startedAt,
      updatedAt: run.updatedAt,
      finishedAt: run.finishedAt,
      resumeAt: run.resumeAt,
      finalizeCursor: run.finalizeCursor,
      error: run.error,
      listingCapabilities: run.listingCapabilities,
      redrive: run.redrive,
      coverage: run.coverage,
    };
    Object.entries(fields).forEach(([name, value], i) => {
      names[`#f${i}`] = name;
      if (value === undefined) removes.push(`#f${i}`);
      else {
        sets.push(`#f${i} = :f${i}`);
        values[`:f${i}`] = convertToAttr(value, OMIT_UNDEFINED);
      }
    });
    const storedCounters = stored?.counters?.M;
    if (!storedCounters) {
      names['#c'] = 'counters';
      sets.push('#c = :counters');
      values[':counters'] = convertToAttr(run.counters, OMIT_UNDEFINED);
    } else {
      COUNTER_NAMES.forEach((name, i) => {
        const before = Number(storedCounters[name]?.N ?? 0);
        const after = run.counters[name];
        if (after > before) {
          // Added, not set: workers may be adding to the same counter right now.
          names['#c'] = 'counters';
          names[`#k${i}`] = name;
          values[`:k${i}`] = { N: String(after - before) };
          values[':zero'] = { N: '0' };
          sets.push(`#c.#k${i} = if_not_exists(#c.#k${i}, :zero) + :k${i}`);
        }
      });
    }
    let condition = stored ? 'attribute_exists(pk)' : 'attribute_not_exists(pk)';
    if (expectedUpdatedAt !== undefined) {
      names['#updatedAt'] = 'updatedAt';
      values[':expected'] = { S: expectedUpdatedAt };
      condition += ' AND #updatedAt = :expected';
    }
    return new UpdateItemCommand({
      TableName: this.table,
      Key: runKey(run.runId),
      UpdateExpression: `SET ${sets.join(', ')}${removes.length ? ` REMOVE ${removes.join(', ')}` : ''}`,
      ConditionExpression: condition,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    });
  }

  async releaseLease(ref: AssetRef, owner: string): Promise<void> {
    await this.freeLease(assetIdOf(ref), owner);
  }

  private async freeLease(id: string, owner: string): Promise<void> {
    await this.conditional(() =>
      this.dynamo.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: assetKey(id),
          UpdateExpression: 'REMOVE #leaseOwner, #leaseUntil',
          ConditionExpression: '#leaseOwner = :owner',
          ExpressionAttributeNames: { '#leaseOwner': 'leaseOwner', '#leaseUntil': 'leaseUntil' },
          ExpressionAttributeValues: { ':owner': { S: owner } },
        }),
      ),
    );
  }

  async getCheckpoint(id: string): Promise<CopyCheckpoint | undefined> {
    return checkpointFromItem(await this.getItem(checkpointKey(id)));
  }

  async saveCheckpoint(id: string, checkpoint: CopyCheckpoint): Promise<void> {
    await this.send(() =>
      this.dynamo.send(new PutItemCommand({ TableName: this.table, Item: checkpointToItem(id, checkpoint) })),
    );
  }

  async dropCheckpoint(id: string): Promise<void> {
    await this.send(() =>
      this.dynamo.send(new DeleteItemCommand({ TableName: this.table, Key: checkpointKey(id) })),
    );
  }

  private async getItem(key: Item): Promise<Item | undefined> {
    const found = await this.send(() =>
      this.dynamo.send(new GetItemCommand({ TableName: this.table, Key: key, ConsistentRead: true })),
    );
    return found.Item;
  }

  /** One BatchGetItem of ≤ 100 keys, retrying what DynamoDB leaves unprocessed. */
  private async batchGet(keys: Item[], consistent: boolean): Promise<Item[]> {
    const items: Item[] = [];
    let pending = keys;
    for (let attempt = 1; pending.length > 0; attempt++) {
      if (attempt > this.maxBatchAttempts) {
        throw new RetryableError(
          `DynamoDB left ${pending.length} keys of table "${this.table}" unprocessed after ${this.maxBatchAttempts} tries; try again`,
        );
      }
      if (attempt > 1) await sleep(backoff(this.backoffMs, attempt - 1));
      const answer = await this.send(() =>
        this.dynamo.send(
          new BatchGetItemCommand({
            RequestItems: { [this.table]: { Keys: pending, ConsistentRead: consistent } },
          }),
        ),
      );
      items.push(...(answer.Responses?.[this.table] ?? []));
      pending = answer.UnprocessedKeys?.[this.table]?.Keys ?? [];
    }
    return items;
  }

  /** Runs a conditional write: true when it happened, false when its condition did not hold. */
  private async conditional(write: () => Promise<unknown>): Promise<boolean> {
    try {
      await write();
      return true;
    } catch (error) {
      if (errorName(error) === 'ConditionalCheckFailedException') return false;
      throw this.classify(error);
    }
  }

  private async send<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw this.classify(error);
    }
  }

  /** Turns a DynamoDB failure into what to do about it; never echoes credentials. */
  private classify(error: unknown): unknown {
    if (error instanceof ReplicatorError) return error;
    const name = errorName(error);
    if (name === 'ResourceNotFoundException') {
      return new FatalError(
        `DynamoDB table "${this.table}" was not found: check the table name setting, the AWS region and the account`,
        { cause: error },
      );
    }
    if (dispositionOf(error) === 'fatal') {
      return new FatalError(
        `DynamoDB denied access to table "${this.table}": check the AWS credentials and that the IAM policy allows this on the table`,
        { cause: error },
      );
    }
    if (isTransientAwsError(error, DYNAMO_TRANSIENT)) {
      return new RetryableError(
        `DynamoDB table "${this.table}" is busy or unavailable, try again: ${describeError(error)}`,
        {
          cause: error,
        },
      );
    }
    return error;
  }
}

const ASSET_FIELDS = [
  'id',
  'resourceType',
  'deliveryType',
  'publicId',
  'assetId',
  'version',
  'bytes',
  'md5',
  'objectKey',
  'objectVersionId',
  'status',
  'replicatedAt',
  'lastSeenRun',
  'deletedAt',
  'attempts',
  'lastError',
  'failedVersion',
  'verifiedBy',
  'quarantinedVersion',
  'quarantinedBytes',
  'errors',
  'renamedTo',
] as const satisfies readonly (keyof AssetState)[];

/** The stored attributes of an asset state (without its key). */
export function assetItem(state: AssetState): Item {
  // An index key cannot be an empty string: an asset without an asset_id stays out of the index.
  const fields = { ...state, assetId: state.assetId || undefined };
  return marshall(Object.fromEntries(ASSET_FIELDS.map((name) => [name, fields[name]])), OMIT_UNDEFINED);
}

/** An asset state from its item; undefined for an item that holds only a lease. */
function assetFromItem(item: Item): AssetState | undefined {
  const raw: Record<string, unknown> = unmarshall(item);
  if (typeof raw.status !== 'string' || typeof raw.id !== 'string') return undefined;
  const state: Record<string, unknown> = {};
  for (const name of ASSET_FIELDS) if (raw[name] !== undefined) state[name] = raw[name];
  state.status = raw.status as AssetStatus;
  state.attempts = typeof raw.attempts === 'number' ? raw.attempts : 0;
  return state as unknown as AssetState;
}

function runFromItem(item: Item): RunRecord {
  const raw: Record<string, unknown> = unmarshall(item);
  const counters = (raw.counters ?? {}) as Partial<RunCounters>;
  const run: RunRecord = {
    runId: raw.runId as string,
    phase: raw.phase as RunRecord['phase'],
    listings: (raw.listings ?? {}) as Record<string, ListingProgress>,
    counters: Object.fromEntries(
      COUNTER_NAMES.map((name) => [name, counters[name] ?? 0]),
    ) as unknown as RunCounters,
    startedAt: raw.startedAt as string,
    updatedAt: raw.updatedAt as string,
  };
  if (typeof raw.finishedAt === 'string') run.finishedAt = raw.finishedAt;
  if (typeof raw.resumeAt === 'string') run.resumeAt = raw.resumeAt;
  if (typeof raw.finalizeCursor === 'string') run.finalizeCursor = raw.finalizeCursor;
  if (typeof raw.error === 'string') run.error = raw.error;
  if (typeof raw.listingCapabilities === 'object' && raw.listingCapabilities !== null) {
    run.listingCapabilities = raw.listingCapabilities as ListingCapabilities;
  }
  if (raw.redrive === true) run.redrive = true;
  if (typeof raw.coverage === 'object' && raw.coverage !== null) run.coverage = raw.coverage as RunCoverage;
  return run;
}

const DYNAMO_TRANSIENT = [
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'InternalServerError',
  'ServiceUnavailable',
  'TransactionConflictException',
  'LimitExceededException',
  'TimeoutError',
];

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StaleRunError } from '../../shared/errors.js';
import { assetIdOf, objectKeyFor } from '../../shared/keys.js';
import type { AssetRef, AssetState, RunCounters, RunRecord, StateStore } from '../../shared/types.js';
import { AWKWARD_PUBLIC_IDS, manualClock, type ManualClock } from './support.js';

export interface StateStoreHarness {
  state: StateStore;
  cleanup?: () => Promise<void>;
}

function refOf(publicId: string): AssetRef {
  return { resourceType: 'image', deliveryType: 'upload', publicId };
}

function copied(publicId: string, version: number, overrides: Partial<AssetState> = {}): AssetState {
  const ref = refOf(publicId);
  return {
    ...ref,
    id: assetIdOf(ref),
    assetId: `asset-${publicId}`,
    version,
    bytes: 1000 + version,
    md5: `${String(version).padStart(8, '0')}${'0'.repeat(24)}`,
    objectKey: objectKeyFor({ ...ref, format: 'jpg' }),
    objectVersionId: `s3-version-${version}`,
    status: 'replicated',
    replicatedAt: `2024-01-0${version}T00:00:00.000Z`,
    lastSeenRun: 'run-1',
    attempts: 0,
    ...overrides,
  };
}

function failing(publicId: string, version: number) {
  const ref = refOf(publicId);
  return { ...ref, version, bytes: 2000 + version, objectKey: objectKeyFor({ ...ref, format: 'jpg' }) };
}

function counters(overrides: Partial<RunCounters> = {}): RunCounters {
  return {
    listed: 0,
    enqueued: 0,
    skipped: 0,
    replicated: 0,
    failed: 0,
    deleted: 0,
    bytes: 0,
    adminCalls: 0,
    settled: 0,
    ...overrides,
  };
}

function run(runId: string, overrides: Partial<RunRecord> = {}): RunRecord {
  return {
    runId,
    phase: 'listing',
    listings: {
      'image/upload': { cursor: 'abc==', pages: 2, done: false },
      'video/upload': { pages: 0, done: true },
    },
    counters: counters({ listed: 1000, enqueued: 10 }),
    startedAt: '2024-05-01T00:00:00.000Z',
    updatedAt: '2024-05-01T00:00:01.000Z',
    ...overrides,
  };
}

async function stateOf(state: StateStore, publicId: string): Promise<AssetState | undefined> {
  return (await state.getMany([assetIdOf(refOf(publicId))])).get(assetIdOf(refOf(publicId)));
}

async function listAll(state: StateStore): Promise<AssetState[]> {
  const found: AssetState[] = [];
  for await (const asset of state.listAssets()) found.push(asset);
  return found;
}

/**
 * What every StateStore must do (rclone's fstests idea): each test gets a fresh, empty store from
 * `make`, reading time from `clock` (leases expire when the test moves it), and gives it back
 * through `cleanup`.
 */
export function stateStoreContract(
  name: string,
  make: (clock: ManualClock) => Promise<StateStoreHarness>,
): void {
  describe(`StateStore contract: ${name}`, () => {
    let harness: StateStoreHarness;
    let state: StateStore;
    let clock: ManualClock;
    beforeEach(async () => {
      clock = manualClock();
      harness = await make(clock);
      state = harness.state;
    });
    afterEach(async () => {
      await harness.cleanup?.();
    });

    describe('asset states', () => {
      it('an asset that was never recorded has no state', async () => {
        const found = await state.getMany([assetIdOf(refOf('never'))]);

        expect(found.size).toBe(0);
      });

      it('a recorded copy reads back with every field', async () => {
        const record = copied('sunset', 1);

        await expect(state.recordReplicated(record)).resolves.toBe(true);
        const found = await stateOf(state, 'sunset');

        expect(found).toEqual(record);
      });

      it('a newer version replaces the recorded one', async () => {
        await state.recordReplicated(copied('sunset', 1));

        await expect(state.recordReplicated(copied('sunset', 2))).resolves.toBe(true);

        expect(await stateOf(state, 'sunset')).toEqual(copied('sunset', 2));
      });

      it('an older version never overwrites a newer one', async () => {
        await state.recordReplicated(copied('sunset', 3));

        await expect(state.recordReplicated(copied('sunset', 2))).resolves.toBe(false);

        expect(await stateOf(state, 'sunset')).toEqual(copied('sunset', 3));
      });

      it('recording the same version twice reports the second as already recorded', async () => {
        await state.recordReplicated(copied('sunset', 1));

        await expect(state.recordReplicated(copied('sunset', 1, { objectVersionId: 'other' }))).resolves.toBe(
          false,
        );

        expect((await stateOf(state, 'sunset'))?.objectVersionId).toBe('s3-version-1');
      });

      it('a copy recorded after failed attempts clears the failure', async () => {
        await state.recordFailure(failing('sunset', 1), 'timeout');
        await state.recordFailure(failing('sunset', 1), 'timeout again');

        await expect(state.recordReplicated(copied('sunset', 1))).resolves.toBe(true);
        const found = await stateOf(state, 'sunset');

        expect(found).toEqual(copied('sunset', 1));
        expect(found?.lastError).toBeUndefined();
        expect(found?.failedVersion).toBeUndefined();
      });

      it('failures of an asset never copied count attempts and keep the last error, cut to 1,000 characters', async () => {
        await state.recordFailure(failing('broken', 5), 'first error');
        await state.recordFailure(failing('broken', 5), `second error ${'x'.repeat(5000)}`);

        const found = await stateOf(state, 'broken');

        expect(found).toMatchObject({
          ...refOf('broken'),
          id: assetIdOf(refOf('broken')),
          status: 'failed',
          version: 5,
          bytes: 2005,
          objectKey: failing('broken', 5).objectKey,
          attempts: 2,
        });
        expect(found?.lastError?.startsWith('second error')).toBe(true);
        expect(found?.lastError?.length).toBeLessThanOrEqual(1000);
      });

      it('a failed copy of a new version keeps the record of the older copy', async () => {
        await state.recordReplicated(copied('sunset', 1));

        await state.recordFailure(failing('sunset', 2), 'checksum mismatch');
        const found = await stateOf(state, 'sunset');

        expect(found).toMatchObject({
          status: 'replicated',
          version: 1,
          bytes: copied('sunset', 1).bytes,
          md5: copied('sunset', 1).md5,
          objectKey: copied('sunset', 1).objectKey,
          objectVersionId: 's3-version-1',
          failedVersion: 2,
          lastError: 'checksum mismatch',
          attempts: 1,
        });
      });

      it('a failure reported for a version no newer than the copy changes nothing', async () => {
        await state.recordReplicated(copied('sunset', 2));

        await state.recordFailure(failing('sunset', 1), 'late failure of an old delivery');
        await state.recordFailure(failing('sunset', 2), 'duplicate delivery failed');

        expect(await stateOf(state, 'sunset')).toEqual(copied('sunset', 2));
      });

      it('a permanent failure quarantines the version with its distinct errors', async () => {
        await state.recordFailure(failing('refused', 4), 'HTTP 403', undefined, {
          quarantine: true,
          errors: ['HTTP 500 after 30 s', 'HTTP 403'],
        });

        expect(await stateOf(state, 'refused')).toMatchObject({
          status: 'quarantined',
          version: 4,
          bytes: failing('refused', 4).bytes,
          lastError: 'HTTP 403',
          errors: ['HTTP 500 after 30 s', 'HTTP 403'],
          attempts: 1,
        });
      });

      it('a permanent failure of a new version keeps the older copy and notes the quarantined version and size', async () => {
        await state.recordReplicated(copied('sunset', 1));

        await state.recordFailure(failing('sunset', 2), 'too large', undefined, { quarantine: true });

        expect(await stateOf(state, 'sunset')).toMatchObject({
          status: 'replicated',
          version: 1,
          md5: copied('sunset', 1).md5,
          quarantinedVersion: 2,
          quarantinedBytes: failing('sunset', 2).bytes,
        });
      });

      it('a failure that may pass (after a redrive) lifts the quarantine beside a copy, so the next run retries it', async () => {
        await state.recordReplicated(copied('sunset', 1));
        await state.recordFailure(failing('sunset', 2), 'HTTP 403', undefined, { quarantine: true });

        await state.recordFailure(failing('sunset', 2), 'HTTP 503');
        const found = await stateOf(state, 'sunset');

        expect(found).toMatchObject({
          status: 'replicated',
          version: 1,
          failedVersion: 2,
          lastError: 'HTTP 503',
        });
        expect(found?.quarantinedVersion).toBeUndefined();
      });

      it('a copy recorded after a quarantine (a redrive, or a new version) clears it', async () => {
        await state.recordFailure(failing('redriven', 1), 'HTTP 400', undefined, {
          quarantine: true,
          errors: ['HTTP 400'],
        });

        await expect(state.recordReplicated(copied('redriven', 1))).resolves.toBe(true);

        expect(await stateOf(state, 'redriven')).toEqual(copied('redriven', 1));
      });

      it('getMany reads hundreds of ids at once, ignoring duplicates and unknown ids', async () => {
        const records = Array.from({ length: 130 }, (_, i) => copied(`bulk/${i}`, 1));
        await Promise.all(records.map((record) => state.recordReplicated(record)));
        const ids = records.map((record) => record.id);
        const asked = [...ids, ...ids.slice(0, 50), 'image/upload/unknown-1', 'image/upload/unknown-2'];

        const found = await state.getMany(asked);

        expect(found.size).toBe(130);
        expect(found.get(assetIdOf(refOf('bulk/129')))).toEqual(copied('bulk/129', 1));
      });

      it('marking deleted flags known assets, ignores unknown ids and keeps the first deletion date', async () => {
        await state.recordReplicated(copied('gone', 1));
        await state.recordReplicated(copied('still-here', 1));
        const gone = assetIdOf(refOf('gone'));

        await state.markDeleted([gone, 'image/upload/never-seen'], '2024-06-01T00:00:00.000Z');
        await state.markDeleted([gone], '2024-07-01T00:00:00.000Z');
        const found = await state.getMany([gone, assetIdOf(refOf('still-here')), 'image/upload/never-seen']);

        expect(found.get(gone)).toMatchObject({
          status: 'deleted-at-source',
          deletedAt: '2024-06-01T00:00:00.000Z',
          version: 1,
          md5: copied('gone', 1).md5,
        });
        expect(found.get(assetIdOf(refOf('still-here')))?.status).toBe('replicated');
        expect(found.has('image/upload/never-seen')).toBe(false);
      });

      it('listAssets returns every asset once and no run records', async () => {
        for (let i = 0; i < 30; i++) await state.recordReplicated(copied(`listed/${i}`, 1));
        await state.recordFailure(failing('listed/failed', 1), 'boom');
        await state.putRun(run('2024-05-01T00-00-00-000Z-aaaaaa'));

        const listed = await listAll(state);

        expect(listed).toHaveLength(31);
        expect(new Set(listed.map((s) => s.id)).size).toBe(31);
        expect(listed.find((s) => s.publicId === 'listed/7')).toEqual(copied('listed/7', 1));
      });

      it('a walk of the assets cut short continues after the last state it returned, missing none', async () => {
        for (let i = 0; i < 40; i++) await state.recordReplicated(copied(`walk/${i}`, 1));
        const first: string[] = [];
        for await (const asset of state.listAssets()) {
          first.push(asset.id);
          if (first.length === 13) break;
        }

        const rest: string[] = [];
        for await (const asset of state.listAssets({ after: first.at(-1) })) rest.push(asset.id);

        expect(rest).toHaveLength(27);
        expect(new Set([...first, ...rest]).size).toBe(40);
      });

      it('a run record keeps the finalize position until it is cleared', async () => {
        await state.putRun(run('2024-05-01T00-00-00-000Z-ffffff', { finalizeCursor: 'image/upload/x' }));
        expect((await state.getRun('2024-05-01T00-00-00-000Z-ffffff'))?.finalizeCursor).toBe(
          'image/upload/x',
        );

        await state.putRun(
          run('2024-05-01T00-00-00-000Z-ffffff', { updatedAt: '2024-05-01T00:00:02.000Z' }),
          '2024-05-01T00:00:01.000Z',
        );

        expect((await state.getRun('2024-05-01T00-00-00-000Z-ffffff'))?.finalizeCursor).toBeUndefined();
      });

      it('unicode and awkward public ids work as state ids', async () => {
        for (const publicId of AWKWARD_PUBLIC_IDS) await state.recordReplicated(copied(publicId, 1));

        const found = await state.getMany(AWKWARD_PUBLIC_IDS.map((p) => assetIdOf(refOf(p))));

        expect(Object.fromEntries(found)).toEqual(
          Object.fromEntries(AWKWARD_PUBLIC_IDS.map((p) => [assetIdOf(refOf(p)), copied(p, 1)])),
        );
      });
    });

    describe('verification', () => {
      it('how a copy was verified reads back', async () => {
        await state.recordReplicated(copied('by-size', 1, { verifiedBy: 'size' }));
        await state.recordReplicated(copied('by-md5', 1, { verifiedBy: 'md5' }));

        expect((await stateOf(state, 'by-size'))?.verifiedBy).toBe('size');
        expect((await stateOf(state, 'by-md5'))?.verifiedBy).toBe('md5');
      });

      it('an etag matching a copy verified by size makes it md5-verified, changing nothing else', async () => {
        const record = copied('checked', 2, { verifiedBy: 'size' });
        await state.recordReplicated(record);

        await expect(state.checkEtag(refOf('checked'), 2, record.md5 ?? '')).resolves.toBe('verified');

        expect(await stateOf(state, 'checked')).toEqual({ ...record, verifiedBy: 'md5' });
      });

      it('an etag that differs from the recorded MD5 marks the copy failed, so the next copy replaces it', async () => {
        const record = copied('corrupt', 2, { verifiedBy: 'size' });
        await state.recordReplicated(record);
        const etag = 'f'.repeat(32);

        await expect(state.checkEtag(refOf('corrupt'), 2, etag)).resolves.toBe('mismatch');
        const marked = await stateOf(state, 'corrupt');
        const lease = await state.acquireLease(refOf('corrupt'), 2, 'worker', 60_000);
        const recopied = await state.recordReplicated(
          copied('corrupt', 2, { md5: etag, verifiedBy: 'md5', objectVersionId: 'again' }),
        );

        expect(marked?.status).toBe('failed');
        expect(marked?.lastError).toContain(etag);
        expect(lease).toBe('acquired');
        expect(recopied).toBe(true);
        expect(await stateOf(state, 'corrupt')).toMatchObject({
          status: 'replicated',
          md5: etag,
          verifiedBy: 'md5',
        });
      });

      it('an etag for another version, or for an asset never copied, changes nothing', async () => {
        const record = copied('other', 3, { verifiedBy: 'size' });
        await state.recordReplicated(record);

        await expect(state.checkEtag(refOf('other'), 2, 'f'.repeat(32))).resolves.toBe('unchanged');
        await expect(state.checkEtag(refOf('never'), 1, 'f'.repeat(32))).resolves.toBe('unchanged');

        expect(await stateOf(state, 'other')).toEqual(record);
        expect(await stateOf(state, 'never')).toBeUndefined();
      });
    });

    describe('leases', () => {
      it('exactly one of many concurrent workers acquires a lease', async () => {
        const results = await Promise.all(
          Array.from({ length: 8 }, (_, i) =>
            state.acquireLease(refOf('contested'), 1, `worker-${i}`, 60_000),
          ),
        );

        expect(results.filter((r) => r === 'acquired')).toHaveLength(1);
        expect(results.filter((r) => r === 'busy')).toHaveLength(7);
      });

      it('claiming an asset does not make it look copied', async () => {
        await state.acquireLease(refOf('claimed'), 1, 'worker-1', 60_000);

        expect((await state.getMany([assetIdOf(refOf('claimed'))])).size).toBe(0);
        expect(await listAll(state)).toEqual([]);
      });

      it('a lease held by another worker is busy until it expires', async () => {
        await state.acquireLease(refOf('slow'), 1, 'worker-1', 300);

        await expect(state.acquireLease(refOf('slow'), 1, 'worker-2', 300)).resolves.toBe('busy');
        clock.advance(299);
        await expect(state.acquireLease(refOf('slow'), 1, 'worker-2', 300)).resolves.toBe('busy');
        clock.advance(2);

        await expect(state.acquireLease(refOf('slow'), 1, 'worker-2', 300)).resolves.toBe('acquired');
      });

      it("a lease renewed by its holder's heartbeat stays busy, and lapses once the heartbeat stops", async () => {
        await state.acquireLease(refOf('beating'), 1, 'worker-1', 3000);
        for (let beat = 0; beat < 5; beat++) {
          clock.advance(1000);
          await expect(state.acquireLease(refOf('beating'), 1, 'worker-1', 3000)).resolves.toBe('acquired');
        }

        await expect(state.acquireLease(refOf('beating'), 1, 'worker-2', 3000)).resolves.toBe('busy');
        clock.advance(3001);

        await expect(state.acquireLease(refOf('beating'), 1, 'worker-2', 3000)).resolves.toBe('acquired');
      });

      it('the lease holder can renew its lease', async () => {
        await state.acquireLease(refOf('renewed'), 1, 'worker-1', 60_000);

        await expect(state.acquireLease(refOf('renewed'), 1, 'worker-1', 60_000)).resolves.toBe('acquired');
      });

      it('a version already copied, or older than the copy, is reported done', async () => {
        await state.recordReplicated(copied('finished', 2));

        await expect(state.acquireLease(refOf('finished'), 2, 'worker-1', 60_000)).resolves.toBe('done');
        await expect(state.acquireLease(refOf('finished'), 1, 'worker-1', 60_000)).resolves.toBe('done');
        await expect(state.acquireLease(refOf('finished'), 3, 'worker-1', 60_000)).resolves.toBe('acquired');
      });

      it('recording the copy frees the lease for the next version', async () => {
        await state.acquireLease(refOf('next'), 1, 'worker-1', 60_000);
        await state.recordReplicated(copied('next', 1));

        await expect(state.acquireLease(refOf('next'), 2, 'worker-2', 60_000)).resolves.toBe('acquired');
      });

      it('a failure frees the lease of the worker that held it, and only that one', async () => {
        await state.acquireLease(refOf('flaky'), 1, 'worker-1', 60_000);

        await state.recordFailure(failing('flaky', 1), 'reset', 'worker-2');
        await expect(state.acquireLease(refOf('flaky'), 1, 'worker-3', 60_000)).resolves.toBe('busy');
        await state.recordFailure(failing('flaky', 1), 'reset', 'worker-1');

        await expect(state.acquireLease(refOf('flaky'), 1, 'worker-3', 60_000)).resolves.toBe('acquired');
        expect(await stateOf(state, 'flaky')).toMatchObject({ status: 'failed', attempts: 2 });
      });
    });

    describe('runs', () => {
      it('a run record reads back as written; an unknown run is undefined', async () => {
        const record = run('2024-05-01T00-00-00-000Z-aaaaaa', { resumeAt: '2024-05-01T01:00:00.000Z' });

        await state.putRun(record);

        expect(await state.getRun(record.runId)).toEqual(record);
        expect(await state.getRun('2023-01-01T00-00-00-000Z-ffffff')).toBeUndefined();
      });

      it('a run keeps what the listing learned about the account', async () => {
        const learned = run('run-learned', {
          listingCapabilities: {
            api: 'resources',
            searchUnavailable: true,
            refusedFields: ['metadata'],
            reason: 'HTTP 403: Search API is not enabled for this account.',
            learnedAt: '2024-05-01T00:00:00.000Z',
          },
        });

        await state.putRun(learned);

        expect(await state.getRun('run-learned')).toEqual(learned);
      });

      it('a field left out of a later write is cleared', async () => {
        const first = run('2024-05-01T00-00-00-000Z-aaaaaa', {
          phase: 'waiting',
          resumeAt: '2024-05-01T01:00:00.000Z',
        });
        await state.putRun(first);
        const next = run(first.runId, {
          phase: 'completed',
          updatedAt: '2024-05-01T02:00:00.000Z',
          finishedAt: '2024-05-01T02:00:00.000Z',
        });

        await state.putRun(next, first.updatedAt);
        const found = await state.getRun(first.runId);

        expect(found).toEqual(next);
        expect(found?.resumeAt).toBeUndefined();
      });

      it('the latest run is the one with the greatest id', async () => {
        await expect(state.latestRun()).resolves.toBeUndefined();
        await state.putRun(run('2024-05-02T00-00-00-000Z-bbbbbb'));
        await state.putRun(run('2024-05-03T00-00-00-000Z-cccccc'));
        await state.putRun(run('2024-05-01T00-00-00-000Z-aaaaaa'));

        expect((await state.latestRun())?.runId).toBe('2024-05-03T00-00-00-000Z-cccccc');
      });

      it('a run write based on a stale read is refused', async () => {
        const first = run('2024-05-01T00-00-00-000Z-aaaaaa');
        await state.putRun(first);
        const mine = { ...first, updatedAt: '2024-05-01T00:00:02.000Z', phase: 'waiting' as const };
        const theirs = { ...first, updatedAt: '2024-05-01T00:00:03.000Z', phase: 'finalizing' as const };
        await state.putRun(theirs, first.updatedAt);

        const refused: unknown = await state.putRun(mine, first.updatedAt).catch((e: unknown) => e);

        expect(refused).toBeInstanceOf(StaleRunError);
        expect((await state.getRun(first.runId))?.phase).toBe('finalizing');
      });

      it('counters added by many workers at once all count', async () => {
        const record = run('2024-05-01T00-00-00-000Z-aaaaaa');
        await state.putRun(record);

        await Promise.all(
          Array.from({ length: 20 }, () =>
            state.addToRunCounters(record.runId, { replicated: 1, bytes: 1000 }),
          ),
        );
        await state.addToRunCounters(record.runId, { failed: 2 });

        expect((await state.getRun(record.runId))?.counters).toEqual(
          counters({ listed: 1000, enqueued: 10, replicated: 20, bytes: 20_000, failed: 2 }),
        );
      });

      it('a checkpoint with stale counters keeps what workers added and raises what it advanced', async () => {
        const record = run('2024-05-01T00-00-00-000Z-aaaaaa');
        await state.putRun(record);
        await state.addToRunCounters(record.runId, { replicated: 5, bytes: 500 });
        const checkpoint = {
          ...record,
          counters: { ...record.counters, listed: 1500, enqueued: 12 },
          updatedAt: '2024-05-01T00:00:09.000Z',
        };

        await state.putRun(checkpoint, record.updatedAt);

        expect((await state.getRun(record.runId))?.counters).toEqual(
          counters({ listed: 1500, enqueued: 12, replicated: 5, bytes: 500 }),
        );
      });

      it('counting into a run that does not exist fails loudly', async () => {
        await expect(
          state.addToRunCounters('2024-01-01T00-00-00-000Z-000000', { replicated: 1 }),
        ).rejects.toThrow(/2024-01-01T00-00-00-000Z-000000/u);
      });
    });
  });
}

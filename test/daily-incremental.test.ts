import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCycle } from '../functions/cycle.js';
import { DEFAULT_SETTINGS } from '../shared/config.js';
import { generateLibrary } from './double/index.js';
import { meterDynamo, type DynamoMeter } from './support/dynamoMeter.js';
import { createPipelineBed, type PipelineBed } from './support/pipelineBed.js';
import { seedCompletedFullRun, seedDynamoStates } from './support/seedState.js';

const DAY_MS = 86_400_000;
const TINY = { image: [500, 2_000], video: [2_000, 4_000], raw: [200, 1_000] } as const;
/** The last full listing started a day before the daily run under test. */
const LAST_RUN = new Date('2026-03-01T10:00:00Z');
const TODAY = new Date(LAST_RUN.getTime() + DAY_MS);

describe('a daily run over 250,000 unchanged assets', { timeout: 900_000 }, () => {
  let bed: PipelineBed;
  let meter: DynamoMeter;
  let now = TODAY;

  beforeAll(async () => {
    bed = await createPipelineBed(
      {
        library: generateLibrary({
          seed: 'unchanged-250k',
          counts: {
            image: { upload: 200_000, private: 10_000 },
            video: { upload: 15_000 },
            raw: { upload: 25_000 },
          },
          sizes: TINY,
        }),
        now: () => now,
      },
      { RECONCILE_EVERY_DAYS: '7' },
    );
    const library = bed.double.library;

    // Backed up already, as the last full run left it. moto writes about 1,000 items a second, so
    // one asset in 25 has its state written straight into the table (10,000): a run that read the
    // state of what it did not list, or scanned the table, would read them all and fail.
    const last = await seedCompletedFullRun(bed.state, DEFAULT_SETTINGS, LAST_RUN, library.size);
    await seedDynamoStates(
      bed.aws.clients.dynamo,
      bed.aws.table,
      library.all().filter((_, i) => i % 25 === 0),
      (asset) => library.md5Of(asset),
      last.runId,
      LAST_RUN.toISOString(),
    );
    meter = meterDynamo(bed.aws.clients.dynamo);
    bed.double.counters.reset();
  }, 600_000);
  afterAll(async () => bed?.close());

  it('makes at most 3 Admin calls, reads at most 100 state items and downloads nothing', async () => {
    now = TODAY;

    const summary = await runCycle({ clients: bed.aws.clients, workers: 1, now: () => now });

    expect(summary.run?.phase).toBe('completed');
    expect(summary.run?.coverage).toMatchObject({ kind: 'changes' });
    expect(bed.double.counters.adminCalls).toBeLessThanOrEqual(3);
    expect(summary.run?.counters.enqueued).toBe(0);
    expect(meter.usage().stateItemsRead).toBeLessThanOrEqual(100);
    expect(bed.double.counters.deliveryRequests + bed.double.counters.downloadApiRequests).toBe(0);
  });
});

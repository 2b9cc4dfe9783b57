import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { RECORDED_COST_INPUTS } from './bench/costFigures.js';
import {
  ALWAYS_ON_IDLE_RECEIVES_PER_DAY,
  costMarkdown,
  costReport,
  idleReceives,
  type CostInputs,
  type DailyRunFigures,
} from './bench/costModel.js';
import { stackInputs } from './bench/costStack.js';

const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

function readmeCostTable(): string {
  const match = /<!-- cost-table:start -->\n([\s\S]*?)\n<!-- cost-table:end -->/u.exec(README);
  if (!match) throw new Error('README.md has no <!-- cost-table:start --> … <!-- cost-table:end --> block');
  return match[1] as string;
}

describe('the README cost table', () => {
  it('is exactly what the bench’s cost model prints for the recorded figures', () => {
    expect(readmeCostTable()).toBe(costMarkdown(costReport(RECORDED_COST_INPUTS)));
  });

  it('counts the alarms, custom metrics and dashboard the stack and handlers have today', () => {
    expect(RECORDED_COST_INPUTS.stack).toEqual(stackInputs());
  }, 120_000);
});

describe('the cost model', () => {
  const quiet: DailyRunFigures = {
    adminCalls: 14,
    dynamoReadUnits: 0,
    dynamoWriteUnits: 0,
    sqsRequests: 0,
    s3PutClass: 0,
    s3GetClass: 0,
    lambdaInvocations: 1,
    lambdaGbSeconds: 0,
    logBytes: 0,
    metricHours: { enumerate: 1, replicate: 0 },
    schedulerInvocations: 1,
    idlePollSeconds: 14,
    objectsTransitioned: 0,
    credentialReads: 1,
  };
  const inputs = (daily: DailyRunFigures): CostInputs => ({
    libraries: [{ name: 'small', assets: 3_000, gb: 10, changesPerDay: 0, daily }],
    stack: { ...RECORDED_COST_INPUTS.stack },
  });

  it('bills idle polling only for the seconds the workers are switched on, against 21,600 polls a day always on', () => {
    expect(ALWAYS_ON_IDLE_RECEIVES_PER_DAY).toBe(21_600);
    expect(idleReceives(14)).toBe(3.5);
    const report = costReport(inputs(quiet));
    const line = (item: string) => report.lines.find((l) => l.item.startsWith(item))?.values[0];
    expect(line('SQS idle polling')).toBeCloseTo(((3.5 * 30) / 1e6) * 0.4, 10);
    expect(line('(before')).toBeCloseTo(((21_600 * 30) / 1e6) * 0.4, 10);
  });

  it('takes a run’s measured figures as one input: more write units cost more, nothing else moves', () => {
    const base = costReport(inputs(quiet));
    const more = costReport(inputs({ ...quiet, dynamoWriteUnits: 1_000_000 / 30 }));
    expect((more.totals[0] ?? 0) - (base.totals[0] ?? 0)).toBeCloseTo(0.625, 6);
  });
});

import { backupRuns } from './backupRuns.js';
import type { BenchContext } from './context.js';
import { pipelineRun, type CycleMeasurement } from './pipelineRun.js';
import type { Metric, SectionResult, TargetCheck } from './results.js';
import { EMPTY_RECEIVE, requestsOf, type AwsService } from './support/requestMeter.js';
import { num, type Table } from './table.js';

const SERVICES: readonly AwsService[] = ['SQS', 'DynamoDB', 'S3'];

/** Requests per asset of a cycle, by service (the runner's own empty long polls left out). */
export function perAsset(cycle: CycleMeasurement, assets: number, service: AwsService): number {
  const runnerOnly =
    service === 'SQS' ? requestsOf(cycle.aws, 'SQS', [EMPTY_RECEIVE, 'GetQueueAttributes']) : 0;
  return (requestsOf(cycle.aws, service) - runnerOnly) / assets;
}

export async function economySection(context: BenchContext): Promise<SectionResult> {
  const runs = await backupRuns(context);
  const pipeline = await pipelineRun(context);
  const admin = [
    ...runs.map((r) => ({ name: `backup ${r.workload}`, assets: r.assets, ...r.admin })),
    {
      name: 'pipeline (runCycle)',
      assets: pipeline.assets,
      floor: pipeline.adminFloor,
      full: pipeline.full.adminCalls,
      noChange: pipeline.noChange.adminCalls,
    },
  ];
  const noChangeBytes = [
    ...runs.map((r) => ({
      name: `backup ${r.workload}`,
      bytes: r.served.noChange,
      copied: r.noChange.files,
    })),
    {
      name: 'pipeline (runCycle)',
      bytes: pipeline.noChange.servedBytes,
      copied: pipeline.noChange.replicated,
    },
  ];
  const metrics: Metric[] = [];
  for (const entry of admin) {
    metrics.push({
      key: `economy.admin.${entry.name.replace(/\W+/gu, '-')}`,
      label: `Admin calls, full run, ${entry.name}`,
      value: entry.full,
      unit: 'calls',
      better: 'lower',
    });
  }
  for (const service of SERVICES) {
    metrics.push(
      {
        key: `economy.aws.full.${service}`,
        label: `${service} requests per copied asset`,
        value: perAsset(pipeline.full, pipeline.assets, service),
        unit: '',
        better: 'lower',
      },
      {
        key: `economy.aws.noChange.${service}`,
        label: `${service} requests per asset, no-change run`,
        value: perAsset(pipeline.noChange, pipeline.assets, service),
        unit: '',
        better: 'lower',
      },
    );
  }
  const atFloor = admin.every((a) => a.full <= a.floor && a.noChange <= a.floor);
  const targets: TargetCheck[] = [
    {
      target: 'Admin API calls at the floor (Σ ceil(n/500) over 9 listings)',
      measured: admin.map((a) => `${a.name}: ${a.full}/${a.floor}`).join('; '),
      met: atFloor,
    },
    {
      target: 'A no-change re-run downloads 0 bytes',
      measured: noChangeBytes.map((b) => `${b.name}: ${num(b.bytes)} B`).join('; '),
      met: noChangeBytes.every((b) => b.bytes === 0 && b.copied === 0),
    },
  ];
  const operations = new Map<string, { full: number; noChange: number }>();
  for (const [which, cycle] of [
    ['full', pipeline.full],
    ['noChange', pipeline.noChange],
  ] as const) {
    for (const op of cycle.aws.operations) {
      const key = `${op.service} ${op.operation}`;
      const entry = operations.get(key) ?? { full: 0, noChange: 0 };
      entry[which] += op.requests;
      operations.set(key, entry);
    }
  }
  const tables: Table[] = [
    {
      title: '3. API economy — Admin API calls (double.counters.adminCalls) vs the floor',
      head: ['Run', 'Assets', 'Floor', 'Full run', 'No-change run', 'At floor'],
      rows: admin.map((a) => [
        a.name,
        num(a.assets),
        num(a.floor),
        num(a.full),
        num(a.noChange),
        a.full <= a.floor && a.noChange <= a.floor ? 'yes' : 'NO',
      ]),
      notes: [
        'Floor: one call per 500 assets per listing over 3 resource types × 3 delivery types; an empty listing costs 1.',
      ],
    },
    {
      title: '3b. API economy — bytes downloaded by a run with nothing changed',
      head: ['Run', 'Copied', 'Bytes downloaded'],
      rows: noChangeBytes.map((b) => [b.name, num(b.copied), num(b.bytes)]),
    },
    {
      title: `3c. API economy — AWS requests of the pipeline (${pipeline.assets} assets), counted by SDK middleware`,
      head: ['Request', 'Full run', 'Per asset', 'No-change run', 'Per asset'],
      rows: [
        ...SERVICES.map((service) => [
          `${service} (all)`,
          num(requestsOf(pipeline.full.aws, service)),
          num(perAsset(pipeline.full, pipeline.assets, service), 2),
          num(requestsOf(pipeline.noChange.aws, service)),
          num(perAsset(pipeline.noChange, pipeline.assets, service), 3),
        ]),
        ...[...operations]
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([name, counts]) => [
            `  ${name}`,
            num(counts.full),
            num(counts.full / pipeline.assets, 3),
            num(counts.noChange),
            num(counts.noChange / pipeline.assets, 3),
          ]),
        [
          'DynamoDB read units (consistent, 4 KB)',
          num(pipeline.full.aws.readUnits),
          num(pipeline.full.aws.readUnits / pipeline.assets, 2),
          num(pipeline.noChange.aws.readUnits),
          num(pipeline.noChange.aws.readUnits / pipeline.assets, 2),
        ],
        [
          'DynamoDB write units (1 KB)',
          num(pipeline.full.aws.writeUnits),
          num(pipeline.full.aws.writeUnits / pipeline.assets, 2),
          num(pipeline.noChange.aws.writeUnits),
          num(pipeline.noChange.aws.writeUnits / pipeline.assets, 3),
        ],
      ],
      notes: [
        `Per-asset figures leave out the workstation runner's own empty long polls and GetQueueAttributes (${EMPTY_RECEIVE}); on AWS the event source polls instead.`,
      ],
    },
  ];
  return {
    name: 'economy',
    tables,
    metrics,
    targets,
    data: { admin, noChangeBytes, aws: { full: pipeline.full.aws, noChange: pipeline.noChange.aws } },
  };
}

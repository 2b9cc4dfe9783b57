import type { CostInputs } from './costModel.js';

/**
 * The daily-run figures and stack counts behind the README cost table, as the cost section of
 * `npm run bench -- --quick --only cost` measured them (bench-results/latest.json, data.inputs,
 * rounded to six digits). Replace them with a new run's (or an incremental run's own
 * DailyRunFigures), then paste `costMarkdown(costReport(RECORDED_COST_INPUTS))` into the README.
 */
export const RECORDED_COST_INPUTS: CostInputs = {
  libraries: [
    {
      name: '3,000 assets / 10 GB',
      assets: 3000,
      gb: 10,
      changesPerDay: 20,
      daily: {
        adminCalls: 14,
        dynamoReadUnits: 3849.09,
        dynamoWriteUnits: 62.8176,
        sqsRequests: 13.0763,
        s3PutClass: 38.3325,
        s3GetClass: 28,
        lambdaInvocations: 5.59542,
        lambdaGbSeconds: 116.393,
        logBytes: 18593.1,
        metricHours: {
          enumerate: 1,
          replicate: 1,
        },
        schedulerInvocations: 3,
        idlePollSeconds: 614,
        objectsTransitioned: 20,
        credentialReads: 5.59542,
      },
    },
    {
      name: '250,000 assets / 1 TB',
      assets: 250000,
      gb: 1000,
      changesPerDay: 1667,
      daily: {
        adminCalls: 508,
        dynamoReadUnits: 320675,
        dynamoWriteUnits: 4284.11,
        sqsRequests: 842.863,
        s3PutClass: 2389.69,
        s3GetClass: 1016,
        lambdaInvocations: 220.328,
        lambdaGbSeconds: 10038.2,
        logBytes: 982992,
        metricHours: {
          enumerate: 2,
          replicate: 1,
        },
        schedulerInvocations: 4,
        idlePollSeconds: 4690,
        objectsTransitioned: 1667,
        credentialReads: 220.328,
      },
    },
  ],
  stack: {
    alarmMetrics: 6,
    customMetrics: {
      enumerate: 6,
      replicate: 4,
    },
    dashboard: true,
    credentials: 'ssm',
    archiveAfterDays: 7,
  },
};

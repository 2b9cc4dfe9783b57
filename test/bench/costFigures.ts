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
        adminCalls: 2.85714,
        dynamoReadUnits: 353.019,
        dynamoWriteUnits: 47.8337,
        sqsRequests: 13.0763,
        s3PutClass: 31.0142,
        s3GetClass: 8.15703,
        lambdaInvocations: 5.59542,
        lambdaGbSeconds: 4.88167,
        logBytes: 15250.3,
        metricHours: {
          enumerate: 1,
          replicate: 1,
        },
        schedulerInvocations: 3,
        idlePollSeconds: 602.857,
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
        adminCalls: 76,
        dynamoReadUnits: 29337.1,
        dynamoWriteUnits: 3986.91,
        sqsRequests: 842.863,
        s3PutClass: 2098.6,
        s3GetClass: 355.603,
        lambdaInvocations: 219.328,
        lambdaGbSeconds: 455.583,
        logBytes: 851892.0,
        metricHours: {
          enumerate: 1,
          replicate: 1,
        },
        schedulerInvocations: 3,
        idlePollSeconds: 676,
        objectsTransitioned: 1667,
        credentialReads: 219.328,
      },
    },
  ],
  stack: {
    alarmMetrics: 3,
    customMetrics: {
      enumerate: 6,
      replicate: 5,
    },
    dashboard: true,
    credentials: 'ssm',
    archiveAfterDays: 7,
  },
};

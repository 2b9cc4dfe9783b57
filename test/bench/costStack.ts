import { readFileSync } from 'node:fs';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { readConfig } from '../../infra/config.js';
import { buildReplicatorApp } from '../../infra/replicatorApp.js';
import type { StackInputs } from './costModel.js';

/** Metric names a handler sends through Powertools (EMF), read from its source. */
export function emittedMetrics(source: string): string[] {
  return [...new Set([...source.matchAll(/addMetric\(\s*'([A-Za-z0-9]+)'/gu)].map((m) => m[1] as string))];
}

/**
 * What the default deployment has that costs by the month: alarm metrics counted from the
 * synthesized template (a metric math alarm bills each metric it reads), custom metrics counted
 * from the handlers' code, the dashboard and where the credentials live from the defaults.
 */
export function stackInputs(): StackInputs {
  const config = readConfig({ context: {}, env: {} });
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const template = Template.fromStack(buildReplicatorApp(app, config)).toJSON() as {
    Resources: Record<string, { Type: string; Properties?: { Metrics?: { MetricStat?: unknown }[] } }>;
  };
  let alarmMetrics = 0;
  for (const resource of Object.values(template.Resources)) {
    if (resource.Type !== 'AWS::CloudWatch::Alarm') continue;
    const metrics = resource.Properties?.Metrics;
    alarmMetrics += metrics ? metrics.filter((m) => m.MetricStat !== undefined).length : 1;
  }
  const dashboards = Object.values(template.Resources).filter(
    (r) => r.Type === 'AWS::CloudWatch::Dashboard',
  ).length;
  const secrets = Object.values(template.Resources).filter(
    (r) => r.Type === 'AWS::SecretsManager::Secret',
  ).length;
  const source = (name: string) => readFileSync(new URL(`../../functions/${name}`, import.meta.url), 'utf8');
  // Powertools' cold-start metric is one more per function (its own `function_name` dimension).
  const coldStart = /captureColdStartMetric:\s*true/u.test(source('observability.ts')) ? 1 : 0;
  return {
    alarmMetrics,
    customMetrics: {
      enumerate: emittedMetrics(source('enumerate.ts')).length + coldStart,
      replicate: emittedMetrics(source('replicate.ts')).length + coldStart,
    },
    dashboard: dashboards > 0,
    credentials: secrets > 0 || config.cloudinarySecret ? 'secrets-manager' : 'ssm',
    archiveAfterDays: config.archiveAfterDays,
  };
}

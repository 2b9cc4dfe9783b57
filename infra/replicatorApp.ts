import type { App } from 'aws-cdk-lib';
import type { ReplicatorConfig } from './config.js';
import { applyNagChecks } from './nag.js';
import { ReplicatorStack } from './ReplicatorStack.js';

/** Adds the replicator stack to `app` and the cdk-nag checks that every synth must pass. */
export function buildReplicatorApp(app: App, config: ReplicatorConfig): ReplicatorStack {
  const stack = new ReplicatorStack(app, 'Replicator', {
    stackName: config.stackName,
    description: 'Cloudinary to S3 replicator: daily, verified copies of every Cloudinary asset',
    config,
  });
  applyNagChecks(app);
  return stack;
}

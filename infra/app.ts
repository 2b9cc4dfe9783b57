import { App } from 'aws-cdk-lib';
import { ConfigError, readConfig } from './config.js';
import { buildReplicatorApp } from './replicatorApp.js';

const app = new App();
try {
  buildReplicatorApp(app, readConfig({ context: app.node.getAllContext(), env: process.env }));
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(error.message);
  process.exit(1);
}
app.synth();

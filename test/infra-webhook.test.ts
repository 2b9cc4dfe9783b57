import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { readConfig } from '../infra/config.js';
import { buildReplicatorApp } from '../infra/replicatorApp.js';

// Template assertions do not need the Lambda bundles.
const SKIP_BUNDLING = { 'aws:cdk:bundling-stacks': [] };

/** The parts of a CloudFormation resource these tests read (loosely typed, as the template is). */
interface CfnResource {
  Type: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- template properties are free-form JSON
  Properties: Record<string, any>;
}
interface CfnTemplate {
  Resources: Record<string, CfnResource>;
  Outputs: Record<string, { Value: unknown }>;
}

function synth(context: Record<string, string>) {
  const app = new App({ context: SKIP_BUNDLING });
  const stack = buildReplicatorApp(app, readConfig({ context, env: {} }));
  return {
    app,
    stack,
    template: Template.fromStack(stack).toJSON() as CfnTemplate,
  };
}

function resourcesOf(template: CfnTemplate, type: string): [string, CfnResource][] {
  return Object.entries(template.Resources).filter(([, r]) => r.Type === type);
}

describe('the webhook endpoint', () => {
  it('is not deployed by default: no function URL, no webhook function, no WebhookUrl output', () => {
    const { template } = synth({});
    expect(resourcesOf(template, 'AWS::Lambda::Url')).toEqual([]);
    expect(Object.keys(template.Outputs)).not.toContain('WebhookUrl');
    expect(Object.keys(template.Resources).some((id) => id.startsWith('Webhook'))).toBe(false);
  });

  it('with replicator:webhooks, is a public function URL throttled by reserved concurrency, its URL a stack output', () => {
    const { template } = synth({ 'replicator:webhooks': 'true', 'replicator:webhookConcurrency': '3' });
    const urls = resourcesOf(template, 'AWS::Lambda::Url');
    expect(urls).toHaveLength(1);
    const [, url] = urls[0] as [string, CfnResource];
    expect(url.Properties.AuthType).toBe('NONE');
    const target = url.Properties.TargetFunctionArn['Fn::GetAtt'][0] as string;
    const fn = template.Resources[target] as CfnResource;
    expect(fn.Properties.ReservedConcurrentExecutions).toBe(3);
    expect(fn.Properties.Timeout).toBeLessThanOrEqual(10);
    expect(fn.Properties.Environment.Variables).toMatchObject({ WEBHOOK_SIGNATURE_ALGORITHM: 'sha1' });
    expect(template.Outputs.WebhookUrl?.Value).toEqual({ 'Fn::GetAtt': [urls[0]?.[0], 'FunctionUrl'] });
  });

  it('grants the webhook function only what it calls: read and update the table, send to the work queue, switch the idle workers on, read the secret', () => {
    const { template } = synth({ 'replicator:webhooks': 'true' });
    const [[, url]] = resourcesOf(template, 'AWS::Lambda::Url') as [[string, CfnResource]];
    const fnId = url.Properties.TargetFunctionArn['Fn::GetAtt'][0] as string;
    const roleId = (template.Resources[fnId] as CfnResource).Properties.Role['Fn::GetAtt'][0] as string;
    const actions = resourcesOf(template, 'AWS::IAM::Policy')
      .filter(([, p]) => p.Properties.Roles.some((r: { Ref: string }) => r.Ref === roleId))
      .flatMap(([, p]) =>
        p.Properties.PolicyDocument.Statement.flatMap((s: { Action: string | string[] }) => s.Action),
      )
      .sort();
    expect([...new Set(actions)]).toEqual([
      'dynamodb:BatchGetItem',
      'dynamodb:UpdateItem',
      'lambda:GetEventSourceMapping',
      'lambda:UpdateEventSourceMapping',
      'logs:CreateLogStream',
      'logs:PutLogEvents',
      'sqs:SendMessage',
      'ssm:GetParameter',
    ]);
  });

  it('leaves cdk-nag with nothing unacknowledged', () => {
    const { app } = synth({ 'replicator:webhooks': 'true' });
    const report = new AwsSolutionsChecks(undefined, { verbose: true }).validateScope(app);
    expect(
      report.violations.map((v) => `${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath)}`),
    ).toEqual([]);
  });

  it('refuses a signature algorithm Cloudinary does not use', () => {
    expect(() => synth({ 'replicator:webhookSignatureAlgorithm': 'md5' })).toThrow(
      /webhookSignatureAlgorithm/u,
    );
  });
});

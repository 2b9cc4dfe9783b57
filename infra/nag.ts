import { Stack, Validations } from 'aws-cdk-lib';
import type { App } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IRole } from 'aws-cdk-lib/aws-iam';
import type { IConstruct } from 'constructs';

/**
 * Runs the AWS Solutions rules on every synth: an unacknowledged finding fails `cdk synth` and
 * `cdk deploy`. Acknowledgements are copied into the template metadata as an audit trail.
 */
export function applyNagChecks(app: App): void {
  Validations.of(app).addPlugins(
    new AwsSolutionsChecks(app, { verbose: true, writeSuppressionsToCloudFormation: true }),
  );
}

/**
 * Acknowledges one wildcard resource (cdk-nag AwsSolutions-IAM5) in the default policy of `role`,
 * and nothing else: the finding id names the exact resource string. Call it after the grant.
 */
export function acknowledgeWildcardResource(role: IRole, resource: string, reason: string): void {
  const policy = role.node.tryFindChild('DefaultPolicy') ?? role;
  Validations.of(policy).acknowledge({ id: wildcardResourceFinding(role, resource), reason });
}

/** cdk-nag's finding id for a wildcard resource, e.g. `AwsSolutions-IAM5[Resource::<Bucket.Arn>/assets/*]`. */
export function wildcardResourceFinding(scope: IConstruct, resource: string): string {
  return `AwsSolutions-IAM5[Resource::${flattenReference(Stack.of(scope).resolve(resource))}]`;
}

/**
 * Writes a resolved CloudFormation value the way cdk-nag names it in findings: `Fn::Join` joined,
 * `Ref` as `<Id>`, `Fn::GetAtt` as `<Id.Attr>`, `${…}` of `Fn::Sub` as `<…>`.
 */
export function flattenReference(value: unknown): string {
  if (value === undefined) return '';
  if (typeof value === 'string') return value.replace(/\$\{/gu, '<').replace(/\}/gu, '>');
  if (typeof value === 'object' && value !== null) {
    const node = value as Record<string, unknown>;
    const join = node['Fn::Join'];
    if (Array.isArray(join) && typeof join[0] === 'string' && Array.isArray(join[1])) {
      return (join[1] as unknown[]).map(flattenReference).join(join[0]);
    }
    if ('Fn::Sub' in node) return flattenReference(node['Fn::Sub']);
    const getAtt = node['Fn::GetAtt'];
    if (Array.isArray(getAtt)) return `<${flattenReference(getAtt[0])}.${flattenReference(getAtt[1])}>`;
    if ('Fn::ImportValue' in node) return flattenReference(node['Fn::ImportValue']);
    if ('Ref' in node) return `<${flattenReference(node.Ref)}>`;
  }
  return JSON.stringify(value);
}

import { resolveIntrinsics } from '../templateIntrinsics.js';

/** A CloudFormation template as `cdk synth` writes it. */
export interface CfnTemplate {
  Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
}

export interface PolicyDocument {
  Version?: string;
  Statement: Record<string, unknown>[];
}

/** What a deployed resource's Ref and Fn::GetAtt turn into. */
export interface Deployed {
  ref: string;
  attrs: Record<string, string>;
}

export interface Where {
  accountId: string;
  region: string;
  /** The stack's ARN (AWS::StackId), when a policy names it. */
  stackId?: string;
}

/** The physical names the test bed gave each resource type (the rest get their logical id). */
export interface TestBedNames {
  bucket: string;
  table: string;
  queueName: string;
  queueUrl: string;
  deadLetterQueueName: string;
  deadLetterQueueUrl: string;
  secretArn: string;
  /** The worker event source mapping made on moto (its UUID), when the test bed made one. */
  workerMappingId?: string;
}

/** Gives every resource of the template the Ref and attributes it has when deployed onto the test bed. */
export function deployOnto(template: CfnTemplate, bed: TestBedNames, where: Where): Record<string, Deployed> {
  const { accountId, region } = where;
  const deployed: Record<string, Deployed> = {};
  for (const [id, resource] of Object.entries(template.Resources)) {
    const props = resource.Properties ?? {};
    const named = typeof props.Name === 'string' ? props.Name : id;
    switch (resource.Type) {
      case 'AWS::S3::Bucket':
        deployed[id] = { ref: bed.bucket, attrs: { Arn: `arn:aws:s3:::${bed.bucket}` } };
        break;
      case 'AWS::DynamoDB::Table':
        deployed[id] = {
          ref: bed.table,
          attrs: { Arn: `arn:aws:dynamodb:${region}:${accountId}:table/${bed.table}` },
        };
        break;
      case 'AWS::SQS::Queue': {
        const dead = id.includes('DeadLetter');
        const name = dead ? bed.deadLetterQueueName : bed.queueName;
        const url = dead ? bed.deadLetterQueueUrl : bed.queueUrl;
        deployed[id] = {
          ref: url,
          attrs: { Arn: `arn:aws:sqs:${region}:${accountId}:${name}`, QueueName: name, QueueUrl: url },
        };
        break;
      }
      case 'AWS::SecretsManager::Secret':
        deployed[id] = { ref: bed.secretArn, attrs: { Id: bed.secretArn } };
        break;
      case 'AWS::Scheduler::ScheduleGroup':
        deployed[id] = {
          ref: named,
          attrs: { Arn: `arn:aws:scheduler:${region}:${accountId}:schedule-group/${named}` },
        };
        break;
      case 'AWS::IAM::Role':
        deployed[id] = { ref: id, attrs: { Arn: `arn:aws:iam::${accountId}:role/${id}`, RoleId: id } };
        break;
      case 'AWS::IAM::ManagedPolicy':
        deployed[id] = { ref: `arn:aws:iam::${accountId}:policy/${id}`, attrs: {} };
        break;
      case 'AWS::Lambda::Function':
        deployed[id] = { ref: id, attrs: { Arn: `arn:aws:lambda:${region}:${accountId}:function:${id}` } };
        break;
      case 'AWS::Lambda::EventSourceMapping': {
        const uuid = bed.workerMappingId ?? id;
        deployed[id] = {
          ref: uuid,
          attrs: {
            EventSourceMappingArn: `arn:aws:lambda:${region}:${accountId}:event-source-mapping:${uuid}`,
          },
        };
        break;
      }
      case 'AWS::Logs::LogGroup':
        deployed[id] = {
          ref: `/aws/lambda/${id}`,
          attrs: { Arn: `arn:aws:logs:${region}:${accountId}:log-group:/aws/lambda/${id}:*` },
        };
        break;
      case 'AWS::KMS::Key':
        deployed[id] = { ref: id, attrs: { Arn: `arn:aws:kms:${region}:${accountId}:key/${id}`, KeyId: id } };
        break;
      case 'AWS::SNS::Topic': {
        const arn = `arn:aws:sns:${region}:${accountId}:${id}`;
        deployed[id] = { ref: arn, attrs: { TopicArn: arn, TopicName: id } };
        break;
      }
      default:
        deployed[id] = { ref: id, attrs: {} };
    }
  }
  return deployed;
}

/** Resolves the template's intrinsics against what each resource is on the test bed. */
export function resolve(value: unknown, deployed: Record<string, Deployed>, where: Where): unknown {
  return resolveIntrinsics(
    value,
    {
      region: where.region,
      accountId: where.accountId,
      stackName: 'CloudinaryS3Replicator',
      stackId: where.stackId,
      resources: new Map(
        Object.entries(deployed).map(([id, d]) => [id, { ref: d.ref, attributes: d.attrs }]),
      ),
    },
    'template',
  );
}

function asArray<T>(value: T | T[] | undefined): T[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/** Each role's identity policies (inline, attached AWS::IAM::Policy and customer managed), resolved. */
export function rolePolicies(
  template: CfnTemplate,
  deployed: Record<string, Deployed>,
  where: Where,
): Map<string, PolicyDocument[]> {
  const byRole = new Map<string, PolicyDocument[]>();
  const add = (role: string, doc: unknown) => {
    const list = byRole.get(role) ?? [];
    list.push(resolve(doc, deployed, where) as PolicyDocument);
    byRole.set(role, list);
  };
  for (const [id, resource] of Object.entries(template.Resources)) {
    const props = resource.Properties ?? {};
    if (resource.Type === 'AWS::IAM::Role') {
      byRole.set(id, byRole.get(id) ?? []);
      for (const inline of asArray(props.Policies as { PolicyDocument: unknown }[]))
        add(id, inline.PolicyDocument);
      for (const managed of asArray(props.ManagedPolicyArns as unknown[])) {
        const arn = String(resolve(managed, deployed, where));
        if (!Object.values(deployed).some((d) => d.ref === arn)) {
          throw new Error(`role ${id} has the managed policy ${arn}, which the test cannot read`);
        }
      }
    }
  }
  for (const resource of Object.values(template.Resources)) {
    if (resource.Type !== 'AWS::IAM::Policy' && resource.Type !== 'AWS::IAM::ManagedPolicy') continue;
    const props = resource.Properties ?? {};
    for (const role of asArray(props.Roles as { Ref: string }[])) add(role.Ref, props.PolicyDocument);
  }
  return byRole;
}

/** Resource policies by the ARN of the resource they protect (bucket, queue, topic). */
export function resourcePolicies(
  template: CfnTemplate,
  deployed: Record<string, Deployed>,
  where: Where,
): Map<string, PolicyDocument> {
  const found = new Map<string, PolicyDocument>();
  for (const resource of Object.values(template.Resources)) {
    const props = resource.Properties ?? {};
    if (resource.Type === 'AWS::S3::BucketPolicy') {
      const bucket = String(resolve(props.Bucket, deployed, where));
      found.set(`arn:aws:s3:::${bucket}`, resolve(props.PolicyDocument, deployed, where) as PolicyDocument);
    }
    if (resource.Type === 'AWS::SQS::QueuePolicy') {
      for (const url of asArray(props.Queues as unknown[])) {
        const name = String(resolve(url, deployed, where))
          .split('/')
          .at(-1);
        found.set(
          `arn:aws:sqs:${where.region}:${where.accountId}:${name}`,
          resolve(props.PolicyDocument, deployed, where) as PolicyDocument,
        );
      }
    }
  }
  return found;
}

/** The execution role (logical id) of each function, by the function's logical id. */
export function functionRoles(template: CfnTemplate): Map<string, string> {
  const roles = new Map<string, string>();
  for (const [id, resource] of Object.entries(template.Resources)) {
    if (resource.Type !== 'AWS::Lambda::Function') continue;
    const role = resource.Properties?.Role as { 'Fn::GetAtt': [string, string] } | undefined;
    if (role?.['Fn::GetAtt']) roles.set(id, role['Fn::GetAtt'][0]);
  }
  return roles;
}

/** A function's environment as deployed onto the test bed. */
export function functionEnvironment(
  template: CfnTemplate,
  functionId: string,
  deployed: Record<string, Deployed>,
  where: Where,
): Record<string, string> {
  const env = (template.Resources[functionId]?.Properties?.Environment as { Variables?: unknown } | undefined)
    ?.Variables;
  return (resolve(env ?? {}, deployed, where) ?? {}) as Record<string, string>;
}

/** The customer managed policies of the template (by logical id), resolved. */
export function managedPolicies(
  template: CfnTemplate,
  deployed: Record<string, Deployed>,
  where: Where,
): Map<string, PolicyDocument> {
  const found = new Map<string, PolicyDocument>();
  for (const [id, resource] of Object.entries(template.Resources)) {
    if (resource.Type !== 'AWS::IAM::ManagedPolicy') continue;
    found.set(id, resolve(resource.Properties?.PolicyDocument, deployed, where) as PolicyDocument);
  }
  return found;
}

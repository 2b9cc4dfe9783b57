import type { WireRequest } from './recordingProxy.js';

/**
 * What IAM authorizes for each API operation the code calls. Source: the AWS Service Authorization
 * Reference (docs.aws.amazon.com/service-authorization/latest/reference/), the pages "Actions,
 * resources, and condition keys for" Amazon S3, Amazon DynamoDB, Amazon SQS, AWS Secrets Manager,
 * AWS Systems Manager, Amazon EventBridge Scheduler, AWS Lambda and AWS CloudFormation; for S3
 * the operation-to-permission table in the S3 API reference ("Permissions" of each operation).
 * An operation missing here fails the IAM contract test: add it with its source, never guess.
 */

/** One authorization AWS makes for a request. */
export interface Authorization {
  action: string;
  resource: string;
  /** Request-specific condition keys (s3:prefix, iam:PassedToService, ...). */
  context: Record<string, string>;
}

/** One recorded request, named and with what it needs from IAM. */
export interface AwsCall {
  principal: string;
  service: string;
  operation: string;
  /** The main resource's ARN, for messages. */
  arn: string;
  /** Whether the request named an object version (S3 VersionId). */
  versioned?: boolean;
  needs: Authorization[];
}

export interface Account {
  accountId: string;
  /** Secrets given by name map to their ARN here. */
  secretArns?: Record<string, string>;
  /** Stacks named in a request map to their ARN (with the stack id IAM sees) here. */
  stackArns?: Record<string, string>;
}

export class UnmappedOperationError extends Error {}

export function describeCall(request: WireRequest, account: Account): AwsCall {
  const service = request.service;
  if (!service) {
    throw new UnmappedOperationError(
      `${request.principal}: unsigned request ${request.method} ${request.url}: every AWS call must be signed`,
    );
  }
  const region = request.region ?? 'us-east-1';
  switch (service) {
    case 's3':
      return s3Call(request);
    case 'dynamodb':
      return dynamoCall(request, region, account);
    case 'sqs':
      return sqsCall(request, region, account);
    case 'secretsmanager':
      return secretsCall(request, region, account);
    case 'ssm':
      return ssmCall(request, region, account);
    case 'scheduler':
      return schedulerCall(request, region, account);
    case 'lambda':
      return lambdaCall(request, region, account);
    case 'cloudformation':
      return cloudFormationCall(request, account);
    default:
      throw new UnmappedOperationError(
        `${request.principal}: no table for service "${service}" (${request.url})`,
      );
  }
}

function unmapped(request: WireRequest, what: string): never {
  throw new UnmappedOperationError(
    `${request.principal}: ${what} ${request.method} ${request.url} is not in the operation table (test/support/iam/awsOperations.ts)`,
  );
}

function jsonTarget(request: WireRequest): { operation: string; body: Record<string, unknown> } {
  const target = String(request.headers['x-amz-target'] ?? '');
  const operation = target.split('.').at(-1) ?? '';
  if (!operation) unmapped(request, 'a JSON request without X-Amz-Target:');
  return { operation, body: request.body ? (JSON.parse(request.body) as Record<string, unknown>) : {} };
}

// ---- S3 (REST, path-style addressing) ----

function s3Call(request: WireRequest): AwsCall {
  const url = new URL(request.url, 'http://s3.local');
  const [, bucket = '', ...rest] = url.pathname.split('/');
  const key = rest.map(decodeURIComponent).join('/');
  const q = url.searchParams;
  // The SDK names the operation in `x-id`; IAM never looks at it.
  q.delete('x-id');
  const method = request.method;
  const bucketArn = `arn:aws:s3:::${decodeURIComponent(bucket)}`;
  const call = (operation: string, arn: string, needs: Authorization[], versioned = false): AwsCall => ({
    principal: request.principal,
    service: 's3',
    operation,
    arn,
    versioned,
    needs,
  });
  const on = (action: string, resource: string, context: Record<string, string> = {}): Authorization => ({
    action,
    resource,
    context,
  });
  const listContext = (): Record<string, string> => {
    const context: Record<string, string> = {};
    const prefix = q.get('prefix');
    if (prefix !== null) context['s3:prefix'] = prefix;
    const delimiter = q.get('delimiter');
    if (delimiter !== null) context['s3:delimiter'] = delimiter;
    return context;
  };

  if (!key) {
    if (method === 'HEAD') return call('HeadBucket', bucketArn, [on('s3:ListBucket', bucketArn)]);
    if (method === 'GET' && q.has('versions')) {
      return call('ListObjectVersions', bucketArn, [on('s3:ListBucketVersions', bucketArn, listContext())]);
    }
    if (method === 'GET' && q.has('uploads')) {
      return call('ListMultipartUploads', bucketArn, [on('s3:ListBucketMultipartUploads', bucketArn)]);
    }
    if (method === 'GET' && q.has('location')) {
      return call('GetBucketLocation', bucketArn, [on('s3:GetBucketLocation', bucketArn)]);
    }
    if (method === 'GET' && q.has('versioning')) {
      return call('GetBucketVersioning', bucketArn, [on('s3:GetBucketVersioning', bucketArn)]);
    }
    if (method === 'GET' && [...q.keys()].every((k) => LIST_PARAMS.has(k))) {
      const operation = q.get('list-type') === '2' ? 'ListObjectsV2' : 'ListObjects';
      return call(operation, bucketArn, [on('s3:ListBucket', bucketArn, listContext())]);
    }
    return unmapped(request, 'the bucket request');
  }

  const objectArn = `${bucketArn}/${key}`;
  const versionId = q.get('versionId');
  const versioned = versionId !== null;
  const copySource = request.headers['x-amz-copy-source'];
  const writeExtras = (): Authorization[] => {
    const extras: Authorization[] = [];
    if (request.headers['x-amz-tagging']) extras.push(on('s3:PutObjectTagging', objectArn));
    if (request.headers['x-amz-object-lock-mode'] || request.headers['x-amz-object-lock-retain-until-date']) {
      extras.push(on('s3:PutObjectRetention', objectArn));
    }
    if (request.headers['x-amz-object-lock-legal-hold']) extras.push(on('s3:PutObjectLegalHold', objectArn));
    if (request.headers['x-amz-acl']) extras.push(on('s3:PutObjectAcl', objectArn));
    return extras;
  };
  const copyReads = (): Authorization[] => {
    const source = new URL(`http://s3.local/${String(copySource).replace(/^\//u, '')}`);
    const sourceArn = `arn:aws:s3:::${decodeURIComponent(source.pathname.slice(1))}`;
    return [on(source.searchParams.has('versionId') ? 's3:GetObjectVersion' : 's3:GetObject', sourceArn)];
  };

  if (method === 'GET' || method === 'HEAD') {
    if (q.has('uploadId'))
      return call('ListParts', objectArn, [on('s3:ListMultipartUploadParts', objectArn)]);
    if (q.has('tagging')) {
      return versioned
        ? call('GetObjectTagging', objectArn, [on('s3:GetObjectVersionTagging', objectArn)], true)
        : call('GetObjectTagging', objectArn, [on('s3:GetObjectTagging', objectArn)]);
    }
    if ([...q.keys()].some((k) => !OBJECT_READ_PARAMS.has(k))) return unmapped(request, 'the object read');
    const operation = method === 'GET' ? 'GetObject' : 'HeadObject';
    return call(
      operation,
      objectArn,
      [on(versioned ? 's3:GetObjectVersion' : 's3:GetObject', objectArn)],
      versioned,
    );
  }
  if (method === 'PUT') {
    if (q.has('partNumber') && q.has('uploadId')) {
      return copySource
        ? call('UploadPartCopy', objectArn, [on('s3:PutObject', objectArn), ...copyReads()])
        : call('UploadPart', objectArn, [on('s3:PutObject', objectArn)]);
    }
    if (q.has('tagging')) {
      return versioned
        ? call('PutObjectTagging', objectArn, [on('s3:PutObjectVersionTagging', objectArn)], true)
        : call('PutObjectTagging', objectArn, [on('s3:PutObjectTagging', objectArn)]);
    }
    if ([...q.keys()].length > 0) return unmapped(request, 'the object write');
    if (copySource) {
      return call('CopyObject', objectArn, [on('s3:PutObject', objectArn), ...copyReads(), ...writeExtras()]);
    }
    return call('PutObject', objectArn, [on('s3:PutObject', objectArn), ...writeExtras()]);
  }
  if (method === 'POST') {
    if (q.has('uploads')) {
      return call('CreateMultipartUpload', objectArn, [on('s3:PutObject', objectArn), ...writeExtras()]);
    }
    if (q.has('uploadId')) return call('CompleteMultipartUpload', objectArn, [on('s3:PutObject', objectArn)]);
    if (q.has('restore')) return call('RestoreObject', objectArn, [on('s3:RestoreObject', objectArn)]);
    return unmapped(request, 'the object POST');
  }
  if (method === 'DELETE') {
    if (q.has('uploadId')) {
      return call('AbortMultipartUpload', objectArn, [on('s3:AbortMultipartUpload', objectArn)]);
    }
    if (q.has('tagging'))
      return call('DeleteObjectTagging', objectArn, [on('s3:DeleteObjectTagging', objectArn)]);
    return versioned
      ? call('DeleteObject', objectArn, [on('s3:DeleteObjectVersion', objectArn)], true)
      : call('DeleteObject', objectArn, [on('s3:DeleteObject', objectArn)]);
  }
  return unmapped(request, 'the object request');
}

const LIST_PARAMS = new Set([
  'list-type',
  'prefix',
  'delimiter',
  'continuation-token',
  'start-after',
  'max-keys',
  'encoding-type',
  'fetch-owner',
  'marker',
  'x-id',
]);
/** Query parameters of a plain GET/HEAD object (conditional reads, ranges, response overrides). */
const OBJECT_READ_PARAMS = new Set(['versionId', 'partNumber', 'x-id', 'response-content-type']);

// ---- JSON protocols ----

function dynamoCall(request: WireRequest, region: string, account: Account): AwsCall {
  const { operation, body } = jsonTarget(request);
  const tableArn = (name: unknown) => `arn:aws:dynamodb:${region}:${account.accountId}:table/${String(name)}`;
  const needs: Authorization[] = [];
  const add = (action: string, resource: string) => needs.push({ action, resource, context: {} });
  switch (operation) {
    case 'GetItem':
    case 'PutItem':
    case 'UpdateItem':
    case 'DeleteItem':
    case 'Scan':
    case 'DescribeTable':
      add(`dynamodb:${operation}`, tableArn(body.TableName));
      break;
    case 'Query':
      add(
        'dynamodb:Query',
        body.IndexName
          ? `${tableArn(body.TableName)}/index/${String(body.IndexName)}`
          : tableArn(body.TableName),
      );
      break;
    case 'BatchGetItem':
    case 'BatchWriteItem':
      for (const table of Object.keys((body.RequestItems ?? {}) as object)) {
        add(`dynamodb:${operation}`, tableArn(table));
      }
      break;
    case 'TransactWriteItems':
    case 'TransactGetItems':
      for (const item of (body.TransactItems ?? []) as Record<string, { TableName: string }>[]) {
        for (const [kind, detail] of Object.entries(item)) {
          const action = {
            Put: 'PutItem',
            Update: 'UpdateItem',
            Delete: 'DeleteItem',
            ConditionCheck: 'ConditionCheckItem',
            Get: 'GetItem',
          }[kind];
          if (!action) unmapped(request, `the transaction item ${kind} of`);
          add(`dynamodb:${action}`, tableArn(detail.TableName));
        }
      }
      break;
    default:
      unmapped(request, `DynamoDB ${operation}:`);
  }
  return {
    principal: request.principal,
    service: 'dynamodb',
    operation,
    arn: needs[0]?.resource ?? '',
    needs,
  };
}

/** SQS batch operations are authorized as their single-message action. */
const SQS_ACTIONS: Record<string, string> = {
  SendMessage: 'sqs:SendMessage',
  SendMessageBatch: 'sqs:SendMessage',
  ReceiveMessage: 'sqs:ReceiveMessage',
  DeleteMessage: 'sqs:DeleteMessage',
  DeleteMessageBatch: 'sqs:DeleteMessage',
  ChangeMessageVisibility: 'sqs:ChangeMessageVisibility',
  ChangeMessageVisibilityBatch: 'sqs:ChangeMessageVisibility',
  GetQueueAttributes: 'sqs:GetQueueAttributes',
  GetQueueUrl: 'sqs:GetQueueUrl',
  PurgeQueue: 'sqs:PurgeQueue',
};

function sqsCall(request: WireRequest, region: string, account: Account): AwsCall {
  const { operation, body } = jsonTarget(request);
  const action = SQS_ACTIONS[operation];
  if (!action) unmapped(request, `SQS ${operation}:`);
  const name = body.QueueUrl ? String(body.QueueUrl).split('/').at(-1) : String(body.QueueName);
  const arn = `arn:aws:sqs:${region}:${account.accountId}:${name}`;
  return {
    principal: request.principal,
    service: 'sqs',
    operation,
    arn,
    needs: [{ action, resource: arn, context: {} }],
  };
}

function secretsCall(request: WireRequest, region: string, account: Account): AwsCall {
  const { operation, body } = jsonTarget(request);
  if (operation !== 'GetSecretValue' && operation !== 'DescribeSecret')
    unmapped(request, `Secrets Manager ${operation}:`);
  const id = String(body.SecretId);
  const arn = id.startsWith('arn:')
    ? id
    : (account.secretArns?.[id] ?? `arn:aws:secretsmanager:${region}:${account.accountId}:secret:${id}`);
  return {
    principal: request.principal,
    service: 'secretsmanager',
    operation,
    arn,
    needs: [{ action: `secretsmanager:${operation}`, resource: arn, context: {} }],
  };
}

function ssmCall(request: WireRequest, region: string, account: Account): AwsCall {
  const { operation, body } = jsonTarget(request);
  if (operation !== 'GetParameter' && operation !== 'GetParameters') unmapped(request, `SSM ${operation}:`);
  const names = operation === 'GetParameter' ? [String(body.Name)] : ((body.Names ?? []) as string[]);
  const needs = names.map((name) => ({
    action: `ssm:${operation}`,
    resource: `arn:aws:ssm:${region}:${account.accountId}:parameter/${name.replace(/^\//u, '')}`,
    context: {},
  }));
  return { principal: request.principal, service: 'ssm', operation, arn: needs[0]?.resource ?? '', needs };
}

// ---- REST JSON ----

function schedulerCall(request: WireRequest, region: string, account: Account): AwsCall {
  const url = new URL(request.url, 'http://scheduler.local');
  const match = /^\/schedules\/([^/]+)$/u.exec(url.pathname);
  if (!match) return unmapped(request, 'the Scheduler request');
  const name = decodeURIComponent(match[1] as string);
  const body = request.body ? (JSON.parse(request.body) as Record<string, unknown>) : {};
  const group = String(body.GroupName ?? url.searchParams.get('groupName') ?? 'default');
  const arn = `arn:aws:scheduler:${region}:${account.accountId}:schedule/${group}/${name}`;
  const operation = {
    POST: 'CreateSchedule',
    PUT: 'UpdateSchedule',
    DELETE: 'DeleteSchedule',
    GET: 'GetSchedule',
  }[request.method];
  if (!operation) return unmapped(request, 'the Scheduler request');
  const needs: Authorization[] = [{ action: `scheduler:${operation}`, resource: arn, context: {} }];
  const roleArn = (body.Target as { RoleArn?: string } | undefined)?.RoleArn;
  if (roleArn) {
    // A schedule runs as its target's role: creating one passes that role to the Scheduler.
    needs.push({
      action: 'iam:PassRole',
      resource: roleArn,
      context: { 'iam:PassedToService': 'scheduler.amazonaws.com' },
    });
  }
  return { principal: request.principal, service: 'scheduler', operation, arn, needs };
}

function lambdaCall(request: WireRequest, region: string, account: Account): AwsCall {
  const url = new URL(request.url, 'http://lambda.local');
  const mapping = /^\/2015-03-31\/event-source-mappings\/([^/]+)$/u.exec(url.pathname);
  if (mapping) {
    const operation = { GET: 'GetEventSourceMapping', PUT: 'UpdateEventSourceMapping' }[request.method];
    if (!operation) return unmapped(request, 'the Lambda event source mapping request');
    const arn = `arn:aws:lambda:${region}:${account.accountId}:event-source-mapping:${decodeURIComponent(mapping[1] as string)}`;
    return {
      principal: request.principal,
      service: 'lambda',
      operation,
      arn,
      needs: [{ action: `lambda:${operation}`, resource: arn, context: {} }],
    };
  }
  const match = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/u.exec(url.pathname);
  if (!match || request.method !== 'POST') return unmapped(request, 'the Lambda request');
  const id = decodeURIComponent(match[1] as string);
  const arn = id.startsWith('arn:') ? id : `arn:aws:lambda:${region}:${account.accountId}:function:${id}`;
  return {
    principal: request.principal,
    service: 'lambda',
    operation: 'Invoke',
    arn,
    needs: [{ action: 'lambda:InvokeFunction', resource: arn, context: {} }],
  };
}

function cloudFormationCall(request: WireRequest, account: Account): AwsCall {
  const form = new URLSearchParams(request.body ?? '');
  const operation = form.get('Action') ?? '';
  if (operation !== 'DescribeStacks') return unmapped(request, `CloudFormation ${operation}:`);
  const stack = form.get('StackName') ?? '';
  // IAM authorizes DescribeStacks on the stack's ARN, which holds an id the name does not tell.
  const arn = stack.startsWith('arn:')
    ? stack
    : (account.stackArns?.[stack] ?? unmapped(request, `the stack "${stack}" (ARN unknown) of`));
  return {
    principal: request.principal,
    service: 'cloudformation',
    operation,
    arn,
    needs: [{ action: 'cloudformation:DescribeStacks', resource: arn, context: {} }],
  };
}

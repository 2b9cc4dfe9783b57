import { Aws } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { ManagedPolicy, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { Validations } from 'aws-cdk-lib';
import { wildcardResourceFinding } from '../nag.js';
import { ASSETS_PREFIX, MANIFESTS_PREFIX } from './BackupBucket.js';
import type { CloudinarySecret } from './CloudinarySecret.js';

export interface OperatorPolicyProps {
  bucket: IBucket;
  table: ITable;
  /** The state table's index from asset_id to states (renames). */
  assetIdIndex: string;
  queue: IQueue;
  deadLetterQueue: IQueue;
  cloudinary: CloudinarySecret;
  enumerateFunction: IFunction;
}

/**
 * What a person needs to run the workstation commands against this stack: `npm run run-now`
 * (start a run), `npm run replicate` (a whole cycle from the workstation, as the two functions do
 * it), `npm run pull` and `npm run restore` (read the backup). Attach it to your IAM user or role (README: Deploy).
 * Nothing in it deletes anything: the bucket policy would refuse it anyway.
 */
export class OperatorPolicy extends Construct {
  readonly policy: ManagedPolicy;

  constructor(scope: Construct, id: string, props: OperatorPolicyProps) {
    super(scope, id);
    const { bucket, table, queue, deadLetterQueue, cloudinary } = props;
    const assets = bucket.arnForObjects(`${ASSETS_PREFIX}*`);
    const manifests = bucket.arnForObjects(`${MANIFESTS_PREFIX}*`);
    const statements = [
      // Every command finds the bucket, table and queues through the stack's outputs.
      new PolicyStatement({ actions: ['cloudformation:DescribeStacks'], resources: [Aws.STACK_ID] }),
      // run-now
      new PolicyStatement({
        actions: ['lambda:InvokeFunction'],
        resources: [props.enumerateFunction.functionArn],
      }),
      // replicate: what the two functions call, plus draining the queue as the event source does.
      new PolicyStatement({ actions: [cloudinary.readAction], resources: [cloudinary.resourceArn] }),
      new PolicyStatement({
        actions: [
          'dynamodb:BatchGetItem',
          'dynamodb:GetItem',
          'dynamodb:PutItem',
          'dynamodb:UpdateItem',
          'dynamodb:DeleteItem',
          'dynamodb:Query',
          'dynamodb:Scan',
        ],
        resources: [table.tableArn],
      }),
      // replicate looks a new public id's asset_id up: a rename is copied inside the bucket.
      new PolicyStatement({
        actions: ['dynamodb:Query'],
        resources: [`${table.tableArn}/index/${props.assetIdIndex}`],
      }),
      new PolicyStatement({
        actions: [
          'sqs:SendMessage',
          'sqs:ReceiveMessage',
          'sqs:DeleteMessage',
          'sqs:ChangeMessageVisibility',
          'sqs:GetQueueAttributes',
        ],
        resources: [queue.queueArn],
      }),
      new PolicyStatement({ actions: ['sqs:SendMessage'], resources: [deadLetterQueue.queueArn] }),
      // replicate writes assets and manifests, aborting a failed multipart upload and tagging the MD5
      // it computed when the listing had none, and copies a renamed asset from the version its old id
      // holds; pull reads them (and that tag), thawing archived assets.
      new PolicyStatement({
        actions: [
          's3:PutObject',
          's3:AbortMultipartUpload',
          's3:ListMultipartUploadParts',
          's3:PutObjectVersionTagging',
          's3:GetObject',
          's3:GetObjectVersion',
          's3:GetObjectTagging',
          's3:RestoreObject',
        ],
        resources: [assets],
      }),
      new PolicyStatement({
        actions: ['s3:PutObject', 's3:AbortMultipartUpload', 's3:GetObject'],
        resources: [manifests],
      }),
      // restore --as-of reads the object versions that were current at a date from the version history.
      new PolicyStatement({ actions: ['s3:GetObjectVersion'], resources: [assets] }),
      new PolicyStatement({ actions: ['s3:ListBucketVersions'], resources: [bucket.bucketArn] }),
      // pull lists the whole bucket (it holds only assets/ and manifests/); replicate aborts the
      // unfinished upload a copy that died left behind.
      new PolicyStatement({
        actions: ['s3:ListBucket', 's3:ListBucketMultipartUploads'],
        resources: [bucket.bucketArn],
      }),
    ];
    if (cloudinary.secret?.encryptionKey) {
      statements.push(
        new PolicyStatement({
          actions: ['kms:Decrypt'],
          resources: [cloudinary.secret.encryptionKey.keyArn],
        }),
      );
    }
    if (bucket.encryptionKey) {
      statements.push(
        new PolicyStatement({
          actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
          resources: [bucket.encryptionKey.keyArn],
        }),
      );
    }
    this.policy = new ManagedPolicy(this, 'Policy', {
      description:
        'Lets a person run npm run run-now, replicate and pull against the Cloudinary backup stack',
      statements,
    });
    const wildcards = [assets, manifests, ...(cloudinary.matchedBySuffix ? [cloudinary.resourceArn] : [])];
    for (const resource of wildcards) {
      Validations.of(this.policy.node.defaultChild ?? this.policy).acknowledge({
        id: wildcardResourceFinding(this, resource),
        reason:
          'Object keys are derived from each asset at runtime, so the grants name keys under assets/ and manifests/ of the backup bucket (no delete action); a secret given by name is matched with the 6-character suffix Secrets Manager adds.',
      });
    }
  }
}

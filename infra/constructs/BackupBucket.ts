import { Aws, Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import { AnyPrincipal, Effect, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import {
  BlockPublicAccess,
  Bucket,
  BucketEncryption,
  ObjectLockRetention,
  ObjectOwnership,
  StorageClass,
  TransitionDefaultMinimumObjectSize,
} from 'aws-cdk-lib/aws-s3';
import type { LifecycleRule } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import type { ArchiveStorageClass, BucketEncryptionKind } from '../config.js';

export const ASSETS_PREFIX = 'assets/';
export const MANIFESTS_PREFIX = 'manifests/';

/** Manifests stay instantly readable: Standard, then Standard-IA once they are rarely read. */
const MANIFESTS_INFREQUENT_ACCESS_AFTER_DAYS = 30;

const STORAGE_CLASSES: Record<ArchiveStorageClass, StorageClass> = {
  GLACIER_IR: StorageClass.GLACIER_INSTANT_RETRIEVAL,
  GLACIER: StorageClass.GLACIER,
  DEEP_ARCHIVE: StorageClass.DEEP_ARCHIVE,
};

export interface BackupBucketProps {
  encryption: BucketEncryptionKind;
  archiveStorageClass: ArchiveStorageClass;
  archiveAfterDays: number;
  noncurrentArchiveAfterDays: number;
  /** 0 keeps noncurrent versions forever. */
  noncurrentExpireAfterDays: number;
  abortIncompleteUploadAfterDays: number;
  /** 0 leaves Object Lock off. */
  objectLockDays: number;
  /** The one role (besides the account root user and CloudFormation deploys) that may erase history. */
  breakGlassRoleArn: string | undefined;
}

/**
 * What erases or endangers the backup's history: denied by the bucket policy to every principal
 * but the break-glass role and CloudFormation's deploy role (which must keep the bucket's settings
 * in line with the template). The replicator's own roles never hold any of these.
 */
export const HISTORY_ERASING_ACTIONS = [
  's3:DeleteObject',
  's3:DeleteObjectVersion',
  's3:BypassGovernanceRetention',
  's3:PutBucketVersioning',
  's3:PutLifecycleConfiguration',
  's3:PutBucketObjectLockConfiguration',
  's3:PutBucketPolicy',
  's3:DeleteBucketPolicy',
  's3:DeleteBucket',
] as const;

/** The CloudFormation execution role `cdk bootstrap` creates (any qualifier). */
export const CDK_DEPLOY_ROLE_PATTERN = `arn:${Aws.PARTITION}:iam::${Aws.ACCOUNT_ID}:role/cdk-*-cfn-exec-role-*`;

/**
 * The bucket that holds the copies: private, TLS-only, encrypted, versioned, retained when the
 * stack is deleted, with assets aging into an archive class and manifests kept readable.
 */
export class BackupBucket extends Construct {
  readonly bucket: Bucket;
  /** Set when the bucket is encrypted with a customer managed key (retained, like the bucket). */
  readonly key: Key | undefined;

  constructor(scope: Construct, id: string, props: BackupBucketProps) {
    super(scope, id);
    this.key =
      props.encryption === 'kms'
        ? new Key(this, 'Key', {
            description: 'Encrypts the Cloudinary backup bucket; deleting it makes the backup unreadable',
            enableKeyRotation: true,
            removalPolicy: RemovalPolicy.RETAIN,
          })
        : undefined;

    this.bucket = new Bucket(this, 'Bucket', {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      ...(this.key
        ? { encryption: BucketEncryption.KMS, encryptionKey: this.key, bucketKeyEnabled: true }
        : { encryption: BucketEncryption.S3_MANAGED }),
      versioned: true,
      removalPolicy: RemovalPolicy.RETAIN,
      ...(props.objectLockDays > 0
        ? {
            objectLockEnabled: true,
            objectLockDefaultRetention: ObjectLockRetention.governance(Duration.days(props.objectLockDays)),
          }
        : {}),
      // Objects under 128 KB cost more in the archive classes (128 KB minimum billable size) than in Standard.
      transitionDefaultMinimumObjectSize: TransitionDefaultMinimumObjectSize.ALL_STORAGE_CLASSES_128_K,
      lifecycleRules: lifecycleRules(props),
    });

    this.bucket.addToResourcePolicy(
      new PolicyStatement({
        sid: 'ProtectBackupHistory',
        effect: Effect.DENY,
        principals: [new AnyPrincipal()],
        actions: [...HISTORY_ERASING_ACTIONS],
        resources: [this.bucket.bucketArn, this.bucket.arnForObjects('*')],
        conditions: {
          ArnNotLike: {
            'aws:PrincipalArn': [
              CDK_DEPLOY_ROLE_PATTERN,
              ...(props.breakGlassRoleArn ? [props.breakGlassRoleArn] : []),
            ],
          },
        },
      }),
    );

    Validations.of(this.bucket.node.defaultChild ?? this.bucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason:
        'No server access logs: every object the replicator writes is recorded (key, version id, MD5, bytes) in the state and the run manifests, and the bucket policy denies deleting versions and changing versioning, lifecycle, Object Lock or the policy to all but the break-glass role and CloudFormation deploys; enable CloudTrail data events if you need per-request audit.',
    });
  }
}

function lifecycleRules(props: BackupBucketProps): LifecycleRule[] {
  const archiveClass = STORAGE_CLASSES[props.archiveStorageClass];
  return [
    {
      id: 'assets-to-archive',
      prefix: ASSETS_PREFIX,
      transitions: [{ storageClass: archiveClass, transitionAfter: Duration.days(props.archiveAfterDays) }],
      noncurrentVersionTransitions: [
        { storageClass: archiveClass, transitionAfter: Duration.days(props.noncurrentArchiveAfterDays) },
      ],
      ...(props.noncurrentExpireAfterDays > 0
        ? { noncurrentVersionExpiration: Duration.days(props.noncurrentExpireAfterDays) }
        : {}),
    },
    {
      id: 'manifests-stay-readable',
      prefix: MANIFESTS_PREFIX,
      transitions: [
        {
          storageClass: StorageClass.INFREQUENT_ACCESS,
          transitionAfter: Duration.days(MANIFESTS_INFREQUENT_ACCESS_AFTER_DAYS),
        },
      ],
    },
    {
      id: 'abort-incomplete-multipart-uploads',
      abortIncompleteMultipartUploadAfter: Duration.days(props.abortIncompleteUploadAfterDays),
    },
  ];
}

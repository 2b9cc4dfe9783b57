import { ArnFormat, Stack } from 'aws-cdk-lib';
import { PolicyStatement, type IGrantable } from 'aws-cdk-lib/aws-iam';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';

/** A complete secret ARN ends with the 6-character suffix Secrets Manager adds to the name. */
const COMPLETE_ARN = /^arn:[^:]+:secretsmanager:[^:]+:\d{12}:secret:.+-[A-Za-z0-9]{6}$/u;

export interface CloudinarySecretProps {
  /** Name or ARN of an existing Secrets Manager secret; unset keeps CLOUDINARY_URL in `parameterName`. */
  existing: string | undefined;
  /** The SSM Parameter Store SecureString that holds CLOUDINARY_URL when no secret is given. */
  parameterName: string;
}

/**
 * Where CLOUDINARY_URL (plain `cloudinary://key:secret@cloud` or JSON `{"CLOUDINARY_URL": "…"}`)
 * lives: an SSM Parameter Store SecureString by default (standard tier: no monthly fee; you create
 * it, CloudFormation cannot), or an existing Secrets Manager secret. Functions read it at runtime;
 * its value never reaches the template, an environment variable or a log.
 */
export class CloudinarySecret extends Construct {
  /** The Secrets Manager secret, when one was given. */
  readonly secret: ISecret | undefined;
  /** The SSM parameter's name, when the value lives in Parameter Store. */
  readonly parameterName: string | undefined;
  /**
   * True when the secret is known only by name or partial ARN: IAM policies then match its
   * unknown 6-character suffix with `<secretArn>-??????`.
   */
  readonly matchedBySuffix: boolean;
  /** What IAM grants name to read the value. */
  readonly resourceArn: string;
  /** The environment variable that tells the functions where to read (never the value itself). */
  readonly envName: 'CLOUDINARY_PARAMETER' | 'CLOUDINARY_SECRET_ID';
  readonly envValue: string;
  readonly readAction: 'ssm:GetParameter' | 'secretsmanager:GetSecretValue';

  constructor(scope: Construct, id: string, props: CloudinarySecretProps) {
    super(scope, id);
    const existing = props.existing;
    if (existing === undefined) {
      this.secret = undefined;
      this.parameterName = props.parameterName;
      this.matchedBySuffix = false;
      // SecureStrings under the AWS managed key (aws/ssm) need no KMS grant: its key policy lets
      // every principal of the account decrypt through Parameter Store.
      this.resourceArn = Stack.of(this).formatArn({
        service: 'ssm',
        resource: 'parameter',
        resourceName: props.parameterName.replace(/^\//u, ''),
        arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
      });
      this.envName = 'CLOUDINARY_PARAMETER';
      this.envValue = props.parameterName;
      this.readAction = 'ssm:GetParameter';
      return;
    }
    if (COMPLETE_ARN.test(existing)) {
      this.secret = Secret.fromSecretCompleteArn(this, 'Secret', existing);
      this.matchedBySuffix = false;
    } else if (existing.startsWith('arn:')) {
      this.secret = Secret.fromSecretPartialArn(this, 'Secret', existing);
      this.matchedBySuffix = true;
    } else {
      this.secret = Secret.fromSecretNameV2(this, 'Secret', existing);
      this.matchedBySuffix = true;
    }
    this.parameterName = undefined;
    this.resourceArn = this.secret.secretFullArn ?? `${this.secret.secretArn}-??????`;
    this.envName = 'CLOUDINARY_SECRET_ID';
    this.envValue = this.secret.secretArn;
    this.readAction = 'secretsmanager:GetSecretValue';
  }

  /** Lets `grantee` read the value (and decrypt it, for a secret under a customer managed key). */
  grantRead(grantee: IGrantable): void {
    grantee.grantPrincipal.addToPrincipalPolicy(
      new PolicyStatement({ actions: [this.readAction], resources: [this.resourceArn] }),
    );
    this.secret?.encryptionKey?.grantDecrypt(grantee);
  }
}

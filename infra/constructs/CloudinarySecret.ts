import { SecretValue, Validations } from 'aws-cdk-lib';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';

/** What a new secret holds until you put your own CLOUDINARY_URL in (see the README's Deploy section). */
export const SECRET_PLACEHOLDER = 'cloudinary://API_KEY:API_SECRET@CLOUD_NAME';

/** A complete secret ARN ends with the 6-character suffix Secrets Manager adds to the name. */
const COMPLETE_ARN = /^arn:[^:]+:secretsmanager:[^:]+:\d{12}:secret:.+-[A-Za-z0-9]{6}$/u;

export interface CloudinarySecretProps {
  /** Name or ARN of an existing secret; unset creates one holding a placeholder. */
  existing: string | undefined;
}

/**
 * The secret that holds CLOUDINARY_URL (plain `cloudinary://key:secret@cloud` or JSON
 * `{"CLOUDINARY_URL": "…"}`). Functions read it at runtime; its value never reaches the template,
 * an environment variable or a log.
 */
export class CloudinarySecret extends Construct {
  readonly secret: ISecret;
  /**
   * True when the secret is known only by name or partial ARN: IAM policies then match its
   * unknown 6-character suffix with `<secretArn>-??????`.
   */
  readonly matchedBySuffix: boolean;

  constructor(scope: Construct, id: string, props: CloudinarySecretProps) {
    super(scope, id);
    const existing = props.existing;
    if (existing === undefined) {
      const secret = new Secret(this, 'Secret', {
        description:
          'CLOUDINARY_URL for the Cloudinary to S3 replicator (cloudinary://API_KEY:API_SECRET@CLOUD_NAME)',
        // A placeholder, not a credential: the real value is put in after deploy and never touches the template.
        secretStringValue: SecretValue.unsafePlainText(SECRET_PLACEHOLDER),
      });
      Validations.of(secret.node.defaultChild ?? secret).acknowledge({
        id: 'AwsSolutions-SMG4',
        reason:
          'Cloudinary API secrets are rotated in the Cloudinary console, not by an AWS rotation Lambda; the README shows how to put the new value in with put-secret-value.',
      });
      this.secret = secret;
      this.matchedBySuffix = false;
    } else if (COMPLETE_ARN.test(existing)) {
      this.secret = Secret.fromSecretCompleteArn(this, 'Secret', existing);
      this.matchedBySuffix = false;
    } else if (existing.startsWith('arn:')) {
      this.secret = Secret.fromSecretPartialArn(this, 'Secret', existing);
      this.matchedBySuffix = true;
    } else {
      this.secret = Secret.fromSecretNameV2(this, 'Secret', existing);
      this.matchedBySuffix = true;
    }
  }
}

import { readCloudFormationOutput } from '../index.js';

/** Stack outputs and the environment variables the handlers read them from. */
const OUTPUTS: Record<string, string> = {
  BucketName: 'BUCKET_NAME',
  TableName: 'TABLE_NAME',
  QueueUrl: 'QUEUE_URL',
  DlqUrl: 'DLQ_URL',
  CloudinaryParameterName: 'CLOUDINARY_PARAMETER',
  SecretArn: 'CLOUDINARY_SECRET_ID',
};

/**
 * Fills BUCKET_NAME, TABLE_NAME, QUEUE_URL, DLQ_URL (and the secret, unless CLOUDINARY_URL is set)
 * from the deployed stack's outputs, without overriding what the environment already says.
 */
export async function envFromStack(
  stack: string,
  env: NodeJS.ProcessEnv,
  read: typeof readCloudFormationOutput = readCloudFormationOutput,
): Promise<void> {
  for (const [output, name] of Object.entries(OUTPUTS)) {
    if (env[name]) continue;
    const credentials = name === 'CLOUDINARY_SECRET_ID' || name === 'CLOUDINARY_PARAMETER';
    if (credentials && env.CLOUDINARY_URL) continue;
    const value = await read(stack, output);
    if (value) env[name] = value;
  }
}

import { randomUUID } from 'node:crypto';
import { PutParameterCommand } from '@aws-sdk/client-ssm';
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager';
import { beforeAll, describe, expect, it } from 'vitest';
import { createAwsClients, type AwsClients } from '../shared/aws/clients.js';
import {
  cloudinaryCredentialsFromParameter,
  cloudinaryCredentialsFromSecret,
} from '../shared/aws/cloudinarySecret.js';
import { ConfigError } from '../shared/errors.js';
import { useMotoEnvironment } from './support/awsTestBed.js';

const URL = 'cloudinary://123456789012345:s3cr3t-Api_Value@demo-cloud';

describe('the Cloudinary credentials the functions read at runtime', () => {
  let clients: AwsClients;
  const name = (label: string) => `/creds-${randomUUID().slice(0, 8)}/${label}`;

  beforeAll(() => {
    useMotoEnvironment();
    clients = createAwsClients();
  });

  it('come from an SSM SecureString, plain or as JSON', async () => {
    const plain = name('plain');
    const json = name('json');
    await clients.ssm.send(new PutParameterCommand({ Name: plain, Type: 'SecureString', Value: URL }));
    await clients.ssm.send(
      new PutParameterCommand({
        Name: json,
        Type: 'SecureString',
        Value: JSON.stringify({ CLOUDINARY_URL: URL }),
      }),
    );

    for (const parameter of [plain, json]) {
      expect(await cloudinaryCredentialsFromParameter(clients.ssm, parameter)).toMatchObject({
        cloudName: 'demo-cloud',
        apiKey: '123456789012345',
        apiSecret: 's3cr3t-Api_Value',
      });
    }
  });

  it('a parameter not created yet says how to create it, and a bad value never shows the value', async () => {
    const missing = name('missing');
    const error = await cloudinaryCredentialsFromParameter(clients.ssm, missing).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect(String((error as Error).message)).toContain(
      `aws ssm put-parameter --name ${missing} --type SecureString`,
    );

    const bad = name('bad');
    await clients.ssm.send(
      new PutParameterCommand({ Name: bad, Type: 'SecureString', Value: 'https://s3cr3t-Api_Value@x' }),
    );
    const refused = await cloudinaryCredentialsFromParameter(clients.ssm, bad).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ConfigError);
    expect(String((refused as Error).message)).not.toContain('s3cr3t');
  });

  it('are read once per container and again after five minutes, so a rotated value is picked up', async () => {
    const parameter = name('rotated');
    await clients.ssm.send(new PutParameterCommand({ Name: parameter, Type: 'SecureString', Value: URL }));
    let now = 0;
    const read = () => cloudinaryCredentialsFromParameter(clients.ssm, parameter, () => now);
    expect((await read()).apiKey).toBe('123456789012345');

    await clients.ssm.send(
      new PutParameterCommand({
        Name: parameter,
        Type: 'SecureString',
        Value: URL.replace('123456789012345', '999999999999999'),
        Overwrite: true,
      }),
    );
    now = 4 * 60_000;
    expect((await read()).apiKey).toBe('123456789012345');
    now = 5 * 60_000 + 1;
    expect((await read()).apiKey).toBe('999999999999999');
  });

  it('still come from an existing Secrets Manager secret when the stack is given one', async () => {
    const secret = await clients.secrets.send(
      new CreateSecretCommand({ Name: `creds-${randomUUID().slice(0, 8)}`, SecretString: URL }),
    );
    expect((await cloudinaryCredentialsFromSecret(clients.secrets, secret.ARN ?? '')).cloudName).toBe(
      'demo-cloud',
    );
  });
});

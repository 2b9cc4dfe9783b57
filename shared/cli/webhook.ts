import { pathToFileURL } from 'node:url';
import {
  cloudinaryCredentialsFromParameter,
  cloudinaryCredentialsFromSecret,
} from '../aws/cloudinarySecret.js';
import { createAwsClients } from '../aws/clients.js';
import { TriggersClient, type Trigger } from '../cloudinary/triggers.js';
import { parseCloudinaryUrl, type CloudinaryCredentials } from '../config.js';
import { readCloudFormationOutput } from '../pull/setup.js';
import { WEBHOOK_EVENT_TYPES } from '../webhook/notification.js';
import {
  exitWhenDone,
  formatHelp,
  parseArgs,
  runCli,
  UsageError,
  type CliStreams,
  type CommandSpec,
  type FlagSpec,
} from './args.js';

export const WEBHOOK_COMMAND = {
  usage: 'npm run webhook -- --register | --status | --remove [--stack NAME]',
  summary:
    "Manages the deployed stack's webhook URL at Cloudinary: one trigger per event type (upload, delete, " +
    'rename, tag and context changes) through the Admin API. The stack must be deployed with replicator:webhooks=true.',
  flags: {
    register: {
      type: 'boolean',
      description: 'Create the triggers that are missing (running it again changes nothing).',
    },
    status: { type: 'boolean', description: 'Show which event types reach the stack and which do not.' },
    remove: { type: 'boolean', description: "Delete every trigger that points at the stack's URL." },
    stack: {
      type: 'string',
      valueName: 'NAME',
      env: 'STACK_NAME',
      default: 'CloudinaryS3Replicator',
      description:
        'The deployed stack: its WebhookUrl output, and CLOUDINARY_URL from its parameter or secret unless set.',
    },
  },
  examples: ['npm run webhook -- --register', 'npm run webhook -- --status --stack MyReplicator'],
} satisfies CommandSpec<Record<string, FlagSpec>>;

type ReadOutput = (stack: string, output: string) => Promise<string | undefined>;

/** CLOUDINARY_URL from the environment, else from where the stack keeps it (its parameter or secret). */
async function credentialsFor(
  stack: string,
  env: NodeJS.ProcessEnv,
  readOutput: ReadOutput,
): Promise<CloudinaryCredentials> {
  if (env.CLOUDINARY_URL) return parseCloudinaryUrl(env.CLOUDINARY_URL);
  const clients = createAwsClients(env);
  const parameter = await readOutput(stack, 'CloudinaryParameterName');
  if (parameter) return cloudinaryCredentialsFromParameter(clients.ssm, parameter);
  const secret = await readOutput(stack, 'SecretArn');
  if (secret) return cloudinaryCredentialsFromSecret(clients.secrets, secret);
  throw new UsageError(`stack ${stack} names no Cloudinary parameter or secret; set CLOUDINARY_URL`);
}

export async function webhookMain(
  argv: readonly string[],
  streams: CliStreams = { stdout: process.stdout, stderr: process.stderr },
  env: NodeJS.ProcessEnv = process.env,
  readOutput: ReadOutput = readCloudFormationOutput,
  fetcher: typeof fetch = fetch,
): Promise<number> {
  return runCli(
    async () => {
      const { flags } = parseArgs(argv, WEBHOOK_COMMAND);
      if (flags.help) {
        streams.stdout.write(formatHelp(WEBHOOK_COMMAND));
        return 0;
      }
      const chosen = (['register', 'status', 'remove'] as const).filter((name) => flags[name]);
      if (chosen.length !== 1) throw new UsageError('give exactly one of --register, --status, --remove');
      const stack = flags.stack ?? env.STACK_NAME ?? 'CloudinaryS3Replicator';
      const url = await readOutput(stack, 'WebhookUrl');
      if (!url) {
        throw new UsageError(
          `stack ${stack} has no WebhookUrl output: deploy it with -c replicator:webhooks=true first`,
        );
      }
      const triggers = new TriggersClient(await credentialsFor(stack, env, readOutput), fetcher);
      const ours = (await triggers.list()).filter((t) => t.uri === url);
      const has = (type: string): Trigger | undefined => ours.find((t) => t.event_type === type);
      const out = (line: string) => streams.stdout.write(`${line}\n`);

      if (flags.register) {
        for (const type of WEBHOOK_EVENT_TYPES) {
          if (has(type)) out(`${type}: already registered`);
          else {
            await triggers.create(url, type);
            out(`${type}: registered`);
          }
        }
        out(`Cloudinary now notifies ${url}`);
        return 0;
      }
      if (flags.remove) {
        for (const trigger of ours) {
          await triggers.remove(trigger.id);
          out(`${trigger.event_type}: removed`);
        }
        out(ours.length === 0 ? `no trigger pointed at ${url}` : `Cloudinary no longer notifies ${url}`);
        return 0;
      }
      const missing = WEBHOOK_EVENT_TYPES.filter((type) => !has(type) && !has('all'));
      for (const type of WEBHOOK_EVENT_TYPES)
        out(`${type}: ${has(type) || has('all') ? 'registered' : 'not registered'}`);
      out(
        missing.length === 0
          ? `Cloudinary notifies ${url} of every change the backup follows`
          : `not registered for ${missing.join(', ')}: run npm run webhook -- --register`,
      );
      return 0;
    },
    { name: 'webhook', streams },
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  exitWhenDone(await webhookMain(process.argv.slice(2)));
}

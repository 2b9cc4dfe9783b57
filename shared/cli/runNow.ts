import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { pathToFileURL } from 'node:url';
import {
  awsClientConfig,
  readCloudFormationOutput,
  formatHelp,
  parseArgs,
  runCli,
  UsageError,
  type CliStreams,
  type CommandSpec,
  type FlagSpec,
  exitWhenDone,
} from '../index.js';

export const RUN_NOW_COMMAND = {
  usage: 'npm run run-now -- [--stack NAME] [--wait]',
  summary:
    'Starts a replication run in the deployed stack now, instead of waiting for the daily schedule. ' +
    'The first run of a new stack copies everything (the backfill).',
  flags: {
    stack: {
      type: 'string',
      valueName: 'NAME',
      env: 'STACK_NAME',
      default: 'CloudinaryS3Replicator',
      description: 'The deployed stack.',
    },
    wait: { type: 'boolean', description: 'Wait for the listing to finish and print its counters.' },
  },
} satisfies CommandSpec<Record<string, FlagSpec>>;

export async function runNowMain(
  argv: readonly string[],
  streams: CliStreams = { stdout: process.stdout, stderr: process.stderr },
  env: NodeJS.ProcessEnv = process.env,
  lambda: Pick<LambdaClient, 'send'> = new LambdaClient(awsClientConfig(env)),
  readOutput: typeof readCloudFormationOutput = readCloudFormationOutput,
): Promise<number> {
  return runCli(
    async () => {
      const { flags } = parseArgs(argv, RUN_NOW_COMMAND);
      if (flags.help) {
        streams.stdout.write(formatHelp(RUN_NOW_COMMAND));
        return 0;
      }
      const stack = flags.stack ?? env.STACK_NAME ?? 'CloudinaryS3Replicator';
      const functionName = await readOutput(stack, 'EnumerateFunctionName');
      if (!functionName)
        throw new UsageError(`stack ${stack} has no EnumerateFunctionName output; is it deployed?`);
      let answer;
      try {
        answer = await lambda.send(
          new InvokeCommand({
            FunctionName: functionName,
            InvocationType: flags.wait ? 'RequestResponse' : 'Event',
            Payload: Buffer.from(JSON.stringify({ action: 'start' })),
          }),
        );
      } catch (error) {
        // The enumerator runs one at a time (reserved concurrency 1): busy means a run is under way.
        if ((error as { name?: string }).name !== 'TooManyRequestsException') throw error;
        streams.stderr.write(
          `run-now: a run is already in progress in ${functionName}; it continues by itself. Follow it on the stack's dashboard, or run without --wait to queue a start for when it ends.\n`,
        );
        return 1;
      }
      if (answer.FunctionError) {
        streams.stderr.write(
          `run-now: the run failed: ${Buffer.from(answer.Payload ?? []).toString('utf8')}\n`,
        );
        return 1;
      }
      streams.stdout.write(
        flags.wait
          ? `${Buffer.from(answer.Payload ?? []).toString('utf8')}\n`
          : `Started a run in ${functionName}; follow it on the stack's dashboard.\n`,
      );
      return 0;
    },
    { name: 'run-now', streams },
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  exitWhenDone(await runNowMain(process.argv.slice(2)));
}

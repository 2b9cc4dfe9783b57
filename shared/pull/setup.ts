import { constants as fsConstants } from 'node:fs';
import { access, mkdir, readFile, realpath, stat, unlink, writeFile } from 'node:fs/promises';
import { awsClientConfig } from '../aws/clients.js';
import { ConfigError } from '../errors.js';
import { refuseSystemFolder } from '../local/systemFolders.js';

export interface BucketChoice {
  bucket?: string;
  stack?: string;
}

/** Reads a CloudFormation stack's `BucketName` output; injected so tests need no CloudFormation. */
export type StackOutputReader = (stack: string, output: string) => Promise<string | undefined>;

/**
 * The bucket to pull from: `--bucket`, else `BACKUP_BUCKET`, else the `BucketName` output of the
 * stack named by `--stack` or `STACK_NAME`. Throws a ConfigError that says how to name one.
 */
export async function resolveBucket(
  choice: BucketChoice,
  env: NodeJS.ProcessEnv = process.env,
  readStackOutput: StackOutputReader = readCloudFormationOutput,
): Promise<string> {
  const direct = choice.bucket ?? env.BACKUP_BUCKET;
  if (direct) return direct;
  const stack = choice.stack ?? env.STACK_NAME;
  if (!stack) {
    throw new ConfigError(
      'no bucket given: pass --bucket NAME, set BACKUP_BUCKET, or pass --stack NAME to read it from the deployed stack',
    );
  }
  const fromStack = await readStackOutput(stack, 'BucketName');
  if (!fromStack) {
    throw new ConfigError(`stack ${stack} has no BucketName output: pass --bucket NAME instead`);
  }
  return fromStack;
}

interface CloudFormationModule {
  CloudFormationClient: new (config: object) => { send(command: unknown): Promise<unknown> };
  DescribeStacksCommand: new (input: { StackName: string }) => unknown;
}

/** Looks up a stack output with @aws-sdk/client-cloudformation when it is installed. */
export async function readCloudFormationOutput(stack: string, output: string): Promise<string | undefined> {
  const moduleName = '@aws-sdk/client-cloudformation';
  let cfn: CloudFormationModule;
  try {
    cfn = (await import(moduleName)) as CloudFormationModule;
  } catch {
    throw new ConfigError(
      `reading the bucket from stack ${stack} needs ${moduleName} (npm i ${moduleName}); or pass --bucket NAME`,
    );
  }
  const client = new cfn.CloudFormationClient(awsClientConfig());
  const answer = (await client.send(new cfn.DescribeStacksCommand({ StackName: stack }))) as {
    Stacks?: { Outputs?: { OutputKey?: string; OutputValue?: string }[] }[];
  };
  return answer.Stacks?.[0]?.Outputs?.find((o) => o.OutputKey === output)?.OutputValue;
}

/**
 * Checks the destination before anything is listed: it must exist (a missing `/Volumes/X` usually
 * means an unplugged drive, and creating it would fill the system disk), be a folder and be writable.
 * Returns its real path.
 */
export async function checkDestination(dest: string): Promise<string> {
  await refuseSystemFolder(dest);
  const info = await stat(dest).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (!info) {
    throw new ConfigError(
      `destination ${dest} does not exist: plug in the drive or create the folder (mkdir -p "${dest}"), then run again`,
    );
  }
  if (!info.isDirectory())
    throw new ConfigError(`destination ${dest} is a file, not a folder: pick a folder`);
  try {
    await access(dest, fsConstants.W_OK);
  } catch {
    throw new ConfigError(
      `cannot write to ${dest}: pick a folder you own, or fix its permissions (is the drive read-only?)`,
    );
  }
  return realpath(dest);
}

/** Creates a folder inside the destination, turning "permission denied" into advice. */
export async function makeControlDir(path: string): Promise<void> {
  try {
    await mkdir(path, { recursive: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
      throw new ConfigError(
        `cannot write to ${path}: fix the destination's permissions (is the drive read-only?)`,
      );
    }
    throw error;
  }
}

/**
 * Takes `<control>/pull.lock` so two pulls (an overlapping cron job, a second terminal) never
 * write the same partial files. A lock left by a process that no longer runs (kill -9, a crash)
 * is taken over. Returns the release function.
 */
export async function acquirePullLock(controlDir: string): Promise<() => Promise<void>> {
  const lockPath = `${controlDir}/pull.lock`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(lockPath, `${process.pid}\n`, { flag: 'wx' });
      return async () => {
        await unlink(lockPath).catch(() => undefined);
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number((await readFile(lockPath, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isRunning(holder)) {
        throw new ConfigError(
          `another pull into this folder is running (process ${holder}); wait for it to finish, or stop it`,
        );
      }
      await unlink(lockPath).catch(() => undefined);
    }
  }
  throw new ConfigError(`could not take ${lockPath}; is another pull starting right now? Try again.`);
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CDK_CLI = join(ROOT, 'node_modules', 'aws-cdk', 'bin', 'cdk');

/** A CloudFormation template as `cdk synth` writes it. */
export interface Template {
  Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
}

/** One Lambda function of the stack and the asset folder `cdk deploy` zips and uploads for it. */
export interface DeployedFunction {
  logicalId: string;
  /** `Handler` of the template, e.g. `index.handler`. */
  handler: string;
  /** `Runtime` of the template, e.g. `nodejs24.x`. */
  runtime: string;
  timeoutSeconds: number;
  memoryMb: number;
  /** `Environment.Variables` as the template writes them (intrinsics unresolved). */
  environment: Record<string, unknown>;
  /** The folder in the cloud assembly whose contents become the function's code. */
  assetDir: string;
}

export interface CloudAssembly {
  dir: string;
  stackName: string;
  template: Template;
  functions: DeployedFunction[];
}

interface Manifest {
  artifacts: Record<string, { type: string; properties?: Record<string, unknown> }>;
}

interface AssetManifest {
  files: Record<
    string,
    { source: { path: string; packaging?: string }; destinations: Record<string, { objectKey: string }> }
  >;
}

/** The environment of a machine with no AWS credentials and no network: nothing to sign with, nothing to ask. */
export function offlineEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('AWS_') && !name.startsWith('CDK_')) env[name] = value;
  }
  return {
    ...env,
    PATH: [join(ROOT, 'node_modules', '.bin'), process.env.PATH].join(delimiter),
    AWS_CONFIG_FILE: join(home, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(home, 'no-aws-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
    CDK_DISABLE_VERSION_CHECK: 'true',
    CDK_DISABLE_CLI_TELEMETRY: 'true',
  };
}

/**
 * Runs the pinned `cdk synth` into `outdir` exactly as `npm run synth` / `cdk deploy` would, offline;
 * `settings` are `REPLICATOR_*` variables, as a user would set them.
 */
export function synthesize(outdir: string, settings: Record<string, string> = {}): void {
  const result = spawnSync(
    process.execPath,
    [CDK_CLI, 'synth', '--quiet', '--no-notices', '--output', outdir],
    { cwd: ROOT, env: { ...offlineEnv(outdir), ...settings }, encoding: 'utf8', timeout: 180_000 },
  );
  if (result.status !== 0) {
    throw new Error(
      `cdk synth failed (${result.status ?? result.error}):\n${result.stdout}\n${result.stderr}`,
    );
  }
}

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

/**
 * Reads the cloud assembly in `dir` the way `cdk deploy` does: the stack artifact names the template,
 * the asset manifest maps each function's `Code.S3Key` back to the folder that is zipped and uploaded.
 */
export function readCloudAssembly(dir: string): CloudAssembly {
  const manifest = readJson<Manifest>(join(dir, 'manifest.json'));
  const artifacts = Object.values(manifest.artifacts);
  const stacks = artifacts.filter((a) => a.type === 'aws:cloudformation:stack');
  if (stacks.length !== 1) throw new Error(`expected one stack in ${dir}, found ${stacks.length}`);
  const stackProps = stacks[0]?.properties as { templateFile: string; stackName: string };
  const template = readJson<Template>(join(dir, stackProps.templateFile));

  const keyToFolder = new Map<string, { path: string; packaging?: string }>();
  for (const artifact of artifacts.filter((a) => a.type === 'cdk:asset-manifest')) {
    const assets = readJson<AssetManifest>(join(dir, String(artifact.properties?.file)));
    for (const asset of Object.values(assets.files)) {
      for (const destination of Object.values(asset.destinations)) {
        keyToFolder.set(destination.objectKey, asset.source);
      }
    }
  }

  const functions: DeployedFunction[] = [];
  for (const [logicalId, resource] of Object.entries(template.Resources)) {
    if (resource.Type !== 'AWS::Lambda::Function') continue;
    const props = resource.Properties as {
      Code: { S3Key?: string; ZipFile?: string };
      Handler: string;
      Runtime: string;
      Timeout?: number;
      MemorySize?: number;
      Environment?: { Variables?: Record<string, unknown> };
    };
    const key = props.Code.S3Key;
    const source = key ? keyToFolder.get(key) : undefined;
    if (!source || source.packaging !== 'zip') {
      throw new Error(
        `${logicalId}: no zip asset in the assembly for its Code ${JSON.stringify(props.Code)}`,
      );
    }
    const assetDir = join(dir, source.path);
    if (!existsSync(assetDir)) throw new Error(`${logicalId}: asset folder ${assetDir} is missing`);
    functions.push({
      logicalId,
      handler: props.Handler,
      runtime: props.Runtime,
      timeoutSeconds: props.Timeout ?? 3,
      memoryMb: props.MemorySize ?? 128,
      environment: props.Environment?.Variables ?? {},
      assetDir,
    });
  }
  return { dir, stackName: stackProps.stackName, template, functions };
}

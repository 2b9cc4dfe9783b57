export * from './types.js';
export * from './constants.js';
export * from './errors.js';
export * from './config.js';
export * from './keys.js';
export * from './hashing.js';
export { CloudinarySource, type CloudinarySourceOptions } from './cloudinary/CloudinarySource.js';
export { unavailableNotes } from './cloudinary/listingCapabilities.js';
export { needsTransfer } from './engine/decide.js';
export { silentLog, type Log } from './engine/log.js';
export * from './engine/manifest.js';
export * from './engine/enumerate.js';
export * from './engine/replicate.js';
export * from './engine/batch.js';
export * from './engine/workers.js';
export { mapLimit } from './concurrency.js';
export { awsClientConfig, createAwsClients, type AwsClients } from './aws/clients.js';
export {
  awsEngineFromEnv,
  cachedAwsEngine,
  continuationFromEnv,
  type AwsEngine,
} from './aws/engineFromEnv.js';
export { scheduleContinuation, scheduleSettleCheck, type ContinuationTarget } from './aws/continuation.js';
export { EventSourceSwitch } from './aws/EventSourceSwitch.js';
export { cloudinaryCredentialsFromSecret } from './aws/cloudinarySecret.js';
export { SqsWorkQueue, workFromSqsRecord, sqsEventFromMessages } from './aws/SqsWorkQueue.js';
export {
  asUsage,
  exitWhenDone,
  formatHelp,
  outputModeFor,
  parseArgs,
  runCli,
  UsageError,
  writeJsonLine,
  type CliStreams,
  type CommandSpec,
  type FlagSpec,
} from './cli/args.js';
export { ProgressReporter, formatBytes, formatDuration } from './progress.js';
export { readCloudFormationOutput } from './pull/setup.js';
export * from './webhook/index.js';

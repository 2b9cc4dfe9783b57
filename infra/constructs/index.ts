export {
  ASSETS_PREFIX,
  BackupBucket,
  CDK_DEPLOY_ROLE_PATTERN,
  HISTORY_ERASING_ACTIONS,
  MANIFESTS_PREFIX,
} from './BackupBucket.js';
export type { BackupBucketProps } from './BackupBucket.js';
export { CloudinarySecret } from './CloudinarySecret.js';
export type { CloudinarySecretProps } from './CloudinarySecret.js';
export { ReplicatorFunction, SERVICE_USED_ACTIONS, WORKER_NODE_OPTIONS } from './ReplicatorFunction.js';
export type { ReplicatorFunctionProps } from './ReplicatorFunction.js';
export { CUSTOM_METRICS, ReplicatorOperations } from './ReplicatorOperations.js';
export type { ReplicatorOperationsProps } from './ReplicatorOperations.js';
export { RunSchedule, START_PAYLOAD } from './RunSchedule.js';
export type { RunScheduleProps } from './RunSchedule.js';
export { StateTable } from './StateTable.js';
export { VISIBILITY_TIMEOUT_FACTOR, WorkQueue } from './WorkQueue.js';
export type { WorkQueueProps } from './WorkQueue.js';
export { OperatorPolicy } from './OperatorPolicy.js';
export type { OperatorPolicyProps } from './OperatorPolicy.js';

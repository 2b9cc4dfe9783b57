export { createAwsClients, type AwsClients } from './clients.js';
export {
  DynamoStateStore,
  BATCH_GET_LIMIT,
  assetKey,
  runKey,
  fromAttribute,
  fromItem,
  toAttribute,
  toItem,
  type DynamoStateStoreOptions,
} from './DynamoStateStore.js';
export {
  S3ObjectStore,
  DEFAULT_PART_BYTES,
  MAX_OBJECT_BYTES,
  MAX_PARTS,
  MAX_PART_BYTES,
  MIN_PART_BYTES,
  assertHeaderSafeMetadata,
  partSizeFor,
  type S3ObjectStoreOptions,
} from './S3ObjectStore.js';
export {
  SqsWorkQueue,
  MAX_BATCH_ENTRIES,
  MAX_MESSAGE_BYTES,
  MAX_REASON_CHARS,
  MAX_VISIBILITY_SECONDS,
  sqsEventFromMessages,
  workFromSqsRecord,
  type SqsWorkQueueOptions,
} from './SqsWorkQueue.js';

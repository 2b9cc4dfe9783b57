export * from './signature.js';
export * from './notification.js';
export * from './handle.js';
export * from './fromEnv.js';
export type { NotificationLedger, Removal } from './types.js';
export { DynamoNotificationLedger } from '../aws/DynamoNotificationLedger.js';

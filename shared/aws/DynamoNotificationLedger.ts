import { UpdateItemCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { errorName } from './awsErrors.js';
import { assetKey } from './DynamoStateStore.js';
import type { NotificationLedger, Removal } from '../webhook/types.js';
import type { ChangeField } from '../webhook/notification.js';

/** Same partition as the asset's state item, another sort key: listings and scans of states never see it. */
export const LEDGER_SORT_KEY = 'NOTIFIED';

function ledgerKey(id: string): Record<string, AttributeValue> {
  return { ...assetKey(id), sk: { S: LEDGER_SORT_KEY } };
}

/** NotificationLedger on the state table: one item per asset a notification named. */
export class DynamoNotificationLedger implements NotificationLedger {
  constructor(
    private readonly dynamo: Pick<DynamoDBClient, 'send'>,
    private readonly table: string,
  ) {}

  claimVersion(id: string, version: number, at: number): Promise<boolean> {
    // The same version passes again until it is on the queue: a retry after a failed enqueue must enqueue.
    return this.update(id, {
      UpdateExpression: 'SET #v = :v, #at = :at REMOVE #removedAt, #renamedTo',
      ConditionExpression:
        '(attribute_not_exists(#v) OR #v < :v OR (#v = :v AND (attribute_not_exists(#queued) OR #queued < :v))) AND (attribute_not_exists(#removedAt) OR #removedAt <= :at)',
      ExpressionAttributeNames: {
        '#v': 'version',
        '#at': 'at',
        '#queued': 'queuedVersion',
        '#removedAt': 'removedAt',
        '#renamedTo': 'renamedTo',
      },
      ExpressionAttributeValues: { ':v': { N: String(version) }, ':at': { N: String(at) } },
    });
  }

  async markQueued(id: string, version: number): Promise<void> {
    await this.update(id, {
      UpdateExpression: 'SET #queued = :v',
      ConditionExpression: 'attribute_not_exists(#queued) OR #queued < :v',
      ExpressionAttributeNames: { '#queued': 'queuedVersion' },
      ExpressionAttributeValues: { ':v': { N: String(version) } },
    });
  }

  claimRemoval(id: string, removal: Removal): Promise<boolean> {
    const names: Record<string, string> = { '#removedAt': 'removedAt' };
    const values: Record<string, AttributeValue> = { ':at': { N: String(removal.at) } };
    let condition: string;
    if (removal.version !== undefined) {
      names['#v'] = 'version';
      values[':v'] = { N: String(removal.version) };
      condition = 'attribute_not_exists(#v) OR #v <= :v';
    } else {
      names['#at'] = 'at';
      condition = 'attribute_not_exists(#at) OR #at <= :at';
    }
    let set = 'SET #removedAt = :at';
    if (removal.renamedTo !== undefined) {
      names['#renamedTo'] = 'renamedTo';
      values[':to'] = { S: removal.renamedTo };
      set += ', #renamedTo = :to';
    }
    return this.update(id, {
      UpdateExpression: set,
      ConditionExpression: condition,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    });
  }

  recordChange(
    id: string,
    field: ChangeField,
    at: number,
    change: Record<string, unknown>,
  ): Promise<boolean> {
    return this.update(id, {
      UpdateExpression: 'SET #change = :change, #changedAt = :at',
      ConditionExpression: 'attribute_not_exists(#changedAt) OR #changedAt <= :at',
      ExpressionAttributeNames: { '#change': `${field}Change`, '#changedAt': `${field}ChangedAt` },
      ExpressionAttributeValues: { ':change': { S: JSON.stringify(change) }, ':at': { N: String(at) } },
    });
  }

  private async update(
    id: string,
    input: Omit<ConstructorParameters<typeof UpdateItemCommand>[0], 'TableName' | 'Key'>,
  ): Promise<boolean> {
    try {
      await this.dynamo.send(new UpdateItemCommand({ TableName: this.table, Key: ledgerKey(id), ...input }));
      return true;
    } catch (error) {
      if (errorName(error) === 'ConditionalCheckFailedException') return false;
      throw error;
    }
  }
}

import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, ProjectionType, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';

/**
 * The state table (`ASSET#…` and `RUN#…` items under `pk`/`sk`): on-demand, point-in-time
 * recovery, deletion protection, and retained when the stack is deleted, because it is the record
 * of what the bucket holds.
 */
export class StateTable extends Construct {
  readonly table: Table;
  /** Index from `assetId` to the keys of its states (shared/aws/DynamoStateStore.ts ASSET_ID_INDEX). */
  readonly assetIdIndex = 'byAssetId';

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.table = new Table(this, 'Table', {
      partitionKey: { name: 'pk', type: AttributeType.STRING },
      sortKey: { name: 'sk', type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      // Encrypted at rest with an AWS owned key: free, unlike a KMS key billed per request.
      encryption: TableEncryption.DEFAULT,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // Renames: the states of one Cloudinary asset_id, so a new public id is copied, not downloaded.
    // Keys only: an index write happens only when an item's assetId changes (rarely).
    this.table.addGlobalSecondaryIndex({
      indexName: this.assetIdIndex,
      partitionKey: { name: 'assetId', type: AttributeType.STRING },
      projectionType: ProjectionType.KEYS_ONLY,
    });
  }
}

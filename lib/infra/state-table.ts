import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import { TABLE_KEY } from '../core/table.ts';

export interface StateTableProps {
  readonly tableName: string;
  /** Regions that get a replica; the stack's own region holds the primary. Default: no replicas. */
  readonly replicaRegions?: readonly string[];
}

/**
 * The durable source of truth (lib/core/table.ts describes its items): a global table with a
 * replica in every edge region so bootstrap reads stay local, PITR, and the `expiresAt` TTL that
 * expires issuance leases and budget windows.
 */
export class StateTable extends Construct {
  readonly table: dynamodb.TableV2;

  constructor(scope: Construct, id: string, props: StateTableProps) {
    super(scope, id);
    this.table = new dynamodb.TableV2(this, 'Table', {
      tableName: props.tableName,
      partitionKey: { name: TABLE_KEY.partition, type: dynamodb.AttributeType.STRING },
      sortKey: { name: TABLE_KEY.sort, type: dynamodb.AttributeType.STRING },
      billing: dynamodb.Billing.onDemand(),
      timeToLiveAttribute: TABLE_KEY.ttl,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      // An AWS-owned key per replica region: a customer key would have to exist in every region first.
      encryption: dynamodb.TableEncryptionV2.awsManagedKey(),
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
      replicas: (props.replicaRegions ?? []).map((region) => ({ region })),
    });
  }
}

import {
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  type DynamoDBClient,
  ResourceNotFoundException,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';

/**
 * The single table that is the durable source of truth. Keys are strings:
 *
 * | item                  | PK                 | SK          |
 * |-----------------------|--------------------|-------------|
 * | tenant                | TENANT#<id>        | TENANT      |
 * | purge generations     | TENANT#<id>        | PURGE       |
 * | domain (registry)     | DOMAIN#<domain>    | DOMAIN      |
 * | certificate           | DOMAIN#<domain>    | CERT        |
 * | issuance lease        | DOMAIN#<domain>    | LEASE       |
 * | issuance state        | DOMAIN#<domain>    | ISSUANCE    |
 * | issuance budget       | BUDGET#<window>    | <bucket>    |
 * | event version (dedup) | EVENT#<entity>     | VERSION     |
 *
 * `expiresAt` (Unix seconds) is the TTL attribute: leases and budget windows expire by themselves.
 * The CDK stack declares the same key schema (lib/infra); this function is for dynalite and tests.
 */
export const TABLE_KEY = { partition: 'PK', sort: 'SK', ttl: 'expiresAt' } as const;

export function tableDefinition(tableName: string): CreateTableCommandInput {
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: TABLE_KEY.partition, AttributeType: 'S' },
      { AttributeName: TABLE_KEY.sort, AttributeType: 'S' },
    ],
    KeySchema: [
      { AttributeName: TABLE_KEY.partition, KeyType: 'HASH' },
      { AttributeName: TABLE_KEY.sort, KeyType: 'RANGE' },
    ],
  };
}

/** Creates the table when absent and waits until it is ACTIVE (dynalite, local runs). */
export async function ensureTable(client: DynamoDBClient, tableName: string): Promise<void> {
  try {
    await client.send(new DescribeTableCommand({ TableName: tableName }));
    return;
  } catch (err) {
    if (!(err instanceof ResourceNotFoundException)) throw err;
  }
  await client.send(new CreateTableCommand(tableDefinition(tableName)));
  for (let i = 0; i < 100; i++) {
    const t = await client.send(new DescribeTableCommand({ TableName: tableName }));
    if (t.Table?.TableStatus === 'ACTIVE') break;
    await new Promise((r) => setTimeout(r, 50));
  }
  await client
    .send(
      new UpdateTimeToLiveCommand({
        TableName: tableName,
        TimeToLiveSpecification: { AttributeName: TABLE_KEY.ttl, Enabled: true },
      }),
    )
    .catch(() => {
      // dynalite does not implement TTL; expiry is also checked on read, so nothing depends on it.
    });
}

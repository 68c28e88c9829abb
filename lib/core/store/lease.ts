import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, type DynamoDBDocumentClient, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';

/**
 * One issuer per domain, fleet-wide: a lease item `DOMAIN#<domain>` / `LEASE` in the home-region
 * table, taken with a conditional write. An expired lease (its holder died) can be taken over;
 * `expiresAt` is also the table's TTL attribute so stale leases disappear by themselves.
 */
export interface Lease {
  readonly domain: string;
  readonly owner: string;
  /** Unix seconds. */
  readonly expiresAt: number;
}

export class LeaseStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly tableName: string,
    readonly owner: string,
    private readonly ttlSeconds: number,
  ) {}

  private key(domain: string) {
    return { PK: `DOMAIN#${domain}`, SK: 'LEASE' };
  }

  /** Takes the lease, or returns undefined when another owner holds a live one. */
  async acquire(domain: string, now = Date.now()): Promise<Lease | undefined> {
    const nowS = Math.floor(now / 1000);
    const expiresAt = nowS + this.ttlSeconds;
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { ...this.key(domain), owner: this.owner, expiresAt, acquiredAt: nowS },
          ConditionExpression: 'attribute_not_exists(PK) OR expiresAt < :now OR #owner = :owner',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: { ':now': nowS, ':owner': this.owner },
        }),
      );
      return { domain, owner: this.owner, expiresAt };
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return undefined;
      throw err;
    }
  }

  /** Extends a held lease; false when it was lost (expired and taken over). */
  async extend(domain: string, now = Date.now()): Promise<boolean> {
    const nowS = Math.floor(now / 1000);
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: this.key(domain),
          UpdateExpression: 'SET expiresAt = :exp',
          ConditionExpression: '#owner = :owner',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: { ':exp': nowS + this.ttlSeconds, ':owner': this.owner },
        }),
      );
      return true;
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return false;
      throw err;
    }
  }

  /** Gives a held lease back; a lease held by someone else is left alone. */
  async release(domain: string): Promise<void> {
    try {
      await this.doc.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: this.key(domain),
          ConditionExpression: '#owner = :owner',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: { ':owner': this.owner },
        }),
      );
    } catch (err) {
      if (!(err instanceof ConditionalCheckFailedException)) throw err;
    }
  }
}

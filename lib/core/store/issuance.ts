import { type DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';

/**
 * Per-domain issuance state in the table (`DOMAIN#<domain>` / `ISSUANCE`): what the control plane
 * reads, and the persisted backoff (so a restart or another task does not reset it).
 */
export type IssuanceStatus = 'pending' | 'issued' | 'failed';

export interface IssuanceRecord {
  readonly domain: string;
  readonly status: IssuanceStatus;
  /** Why the last attempt failed (failed only). */
  readonly reason?: string;
  /** Consecutive failed attempts; reset by a success. */
  readonly failures: number;
  /** Unix ms before which no new attempt is made (backoff, rate limit or budget). */
  readonly nextAttemptAt?: number;
  /** Certificate expiry, Unix seconds (issued only). */
  readonly expiry?: number;
  readonly ca?: string;
  readonly updatedAt: number;
  readonly updatedBy?: string;
}

export class IssuanceStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly owner: string,
  ) {}

  private key(domain: string) {
    return { PK: `DOMAIN#${domain}`, SK: 'ISSUANCE' };
  }

  async get(domain: string): Promise<IssuanceRecord | undefined> {
    const out = await this.doc.send(
      new GetCommand({ TableName: this.tableName, Key: this.key(domain), ConsistentRead: true }),
    );
    if (!out.Item) return undefined;
    const i = out.Item;
    return {
      domain,
      status: i.status as IssuanceStatus,
      reason: i.reason as string | undefined,
      failures: Number(i.failures ?? 0),
      nextAttemptAt: i.nextAttemptAt === undefined ? undefined : Number(i.nextAttemptAt),
      expiry: i.expiry === undefined ? undefined : Number(i.expiry),
      ca: i.ca as string | undefined,
      updatedAt: Number(i.updatedAt ?? 0),
      updatedBy: i.updatedBy as string | undefined,
    };
  }

  private async update(domain: string, set: Record<string, unknown>, remove: string[] = []): Promise<void> {
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = {};
    const sets = Object.entries({ ...set, updatedAt: Date.now(), updatedBy: this.owner }).map(([k, v]) => {
      names[`#${k}`] = k;
      values[`:${k}`] = v;
      return `#${k} = :${k}`;
    });
    const removes = remove.map((k) => {
      names[`#${k}`] = k;
      return `#${k}`;
    });
    await this.doc.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: this.key(domain),
        UpdateExpression: `SET ${sets.join(', ')}${removes.length ? ` REMOVE ${removes.join(', ')}` : ''}`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      }),
    );
  }

  async pending(domain: string): Promise<void> {
    await this.update(domain, { status: 'pending' });
  }

  async issued(domain: string, expiry: number, ca: string): Promise<void> {
    await this.update(domain, { status: 'issued', expiry, ca, failures: 0 }, ['reason', 'nextAttemptAt']);
  }

  /** Records a failure, the consecutive failure count and when the next attempt may start. */
  async failed(domain: string, reason: string, nextAttemptAt: number, failures: number): Promise<void> {
    await this.update(domain, { status: 'failed', reason: reason.slice(0, 500), nextAttemptAt, failures });
  }
}

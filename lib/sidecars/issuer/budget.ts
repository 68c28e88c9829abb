import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, type DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { BudgetConfig } from './config.ts';
import { BudgetExceededError } from './errors.ts';

/**
 * The fleet-wide issuance budget, kept in the table so every task and region shares it.
 *
 * Each limit is a sliding window cut into fixed slots: item `BUDGET#<limit>@<slotStart>` /
 * `<subject>` counts what happened in that slot. A reservation sums the earlier slots of the window
 * (those never change again) and then adds one to the current slot with a conditional write that
 * refuses when the total would pass the limit, so concurrent issuers cannot overshoot.
 * Counting one slot more than the window makes the bound conservative.
 */
export interface WindowLimit {
  readonly name: string;
  readonly limit: number;
  readonly windowSeconds: number;
  readonly slots: number;
}

const HOUR = 3600;
const WEEK = 7 * 24 * HOUR;

export function letsEncryptLimits(c: BudgetConfig) {
  return {
    orders: { name: 'orders-3h', limit: c.ordersPer3h, windowSeconds: 3 * HOUR, slots: 12 },
    certsPerDomain: {
      name: 'certs-domain-week',
      limit: c.certsPerDomainPerWeek,
      windowSeconds: WEEK,
      slots: 14,
    },
    duplicates: { name: 'duplicates-week', limit: c.duplicatesPerWeek, windowSeconds: WEEK, slots: 14 },
    failedAuthz: {
      name: 'failed-authz-1h',
      limit: c.failedAuthzPerNamePerHour,
      windowSeconds: HOUR,
      slots: 6,
    },
  } satisfies Record<string, WindowLimit>;
}

export class Budget {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  private slot(limit: WindowLimit, now: number) {
    const size = Math.ceil(limit.windowSeconds / limit.slots);
    const current = Math.floor(now / 1000 / size) * size;
    return { size, current };
  }

  private key(limit: WindowLimit, slotStart: number, subject: string) {
    return { PK: `BUDGET#${limit.name}@${slotStart}`, SK: subject };
  }

  /** Events in the window before the current slot (plus one slot, conservatively). */
  private async earlier(limit: WindowLimit, subject: string, now: number): Promise<number> {
    const { size, current } = this.slot(limit, now);
    const keys = [];
    for (let i = 1; i <= limit.slots; i++) keys.push(this.key(limit, current - i * size, subject));
    const out = await this.doc.send(
      new BatchGetCommand({ RequestItems: { [this.tableName]: { Keys: keys } } }),
    );
    return (out.Responses?.[this.tableName] ?? []).reduce((sum, item) => sum + Number(item.n ?? 0), 0);
  }

  async count(limit: WindowLimit, subject: string, now = Date.now()): Promise<number> {
    const { current } = this.slot(limit, now);
    const out = await this.doc.send(
      new BatchGetCommand({
        RequestItems: { [this.tableName]: { Keys: [this.key(limit, current, subject)] } },
      }),
    );
    const cur = Number(out.Responses?.[this.tableName]?.[0]?.n ?? 0);
    return cur + (await this.earlier(limit, subject, now));
  }

  /** Counts one event if the window has room; throws BudgetExceededError otherwise. */
  async reserve(limit: WindowLimit, subject: string, now = Date.now()): Promise<void> {
    const { size, current } = this.slot(limit, now);
    const room = limit.limit - (await this.earlier(limit, subject, now));
    const retryAt = (current + size) * 1000;
    if (room <= 0) throw new BudgetExceededError(`${limit.name}:${subject}`, retryAt);
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: this.key(limit, current, subject),
          UpdateExpression: 'ADD #n :one SET expiresAt = :exp',
          ConditionExpression: 'attribute_not_exists(#n) OR #n < :room',
          ExpressionAttributeNames: { '#n': 'n' },
          ExpressionAttributeValues: {
            ':one': 1,
            ':room': room,
            ':exp': current + size + limit.windowSeconds,
          },
        }),
      );
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) {
        throw new BudgetExceededError(`${limit.name}:${subject}`, retryAt);
      }
      throw err;
    }
  }

  /** Gives back a reservation that was not used (a later limit refused the order). */
  async unreserve(limit: WindowLimit, subject: string, now = Date.now()): Promise<void> {
    const { current } = this.slot(limit, now);
    await this.doc
      .send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: this.key(limit, current, subject),
          UpdateExpression: 'ADD #n :minus',
          ConditionExpression: '#n > :zero',
          ExpressionAttributeNames: { '#n': 'n' },
          ExpressionAttributeValues: { ':minus': -1, ':zero': 0 },
        }),
      )
      .catch(() => {});
  }

  /** Counts an event unconditionally (a failed authorization already happened). */
  async record(limit: WindowLimit, subject: string, now = Date.now()): Promise<void> {
    const { size, current } = this.slot(limit, now);
    await this.doc.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: this.key(limit, current, subject),
        UpdateExpression: 'ADD #n :one SET expiresAt = :exp',
        ExpressionAttributeNames: { '#n': 'n' },
        ExpressionAttributeValues: { ':one': 1, ':exp': current + size + limit.windowSeconds },
      }),
    );
  }

  /** Throws when the count already reached the limit (no reservation made). */
  async check(limit: WindowLimit, subject: string, now = Date.now()): Promise<void> {
    if ((await this.count(limit, subject, now)) >= limit.limit) {
      const { size, current } = this.slot(limit, now);
      throw new BudgetExceededError(`${limit.name}:${subject}`, (current + size) * 1000);
    }
  }

  /** A CA that answered 429 is paused fleet-wide until its Retry-After. */
  async pauseCa(ca: string, untilMs: number): Promise<void> {
    await this.doc
      .send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { PK: 'BUDGET#ca-pause', SK: ca },
          UpdateExpression: 'SET untilMs = :u, expiresAt = :exp',
          ConditionExpression: 'attribute_not_exists(untilMs) OR untilMs < :u',
          ExpressionAttributeValues: { ':u': untilMs, ':exp': Math.ceil(untilMs / 1000) + 3600 },
        }),
      )
      .catch((err) => {
        if (!(err instanceof ConditionalCheckFailedException)) throw err;
      });
  }

  async caPausedUntil(ca: string): Promise<number> {
    const out = await this.doc.send(
      new BatchGetCommand({
        RequestItems: { [this.tableName]: { Keys: [{ PK: 'BUDGET#ca-pause', SK: ca }] } },
      }),
    );
    return Number(out.Responses?.[this.tableName]?.[0]?.untilMs ?? 0);
  }
}

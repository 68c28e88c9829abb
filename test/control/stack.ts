import { join } from 'node:path';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { Redis } from 'ioredis';
import { beforeAll } from 'vitest';
import { decodeEvent, type EdgeEvent } from '../../lib/core/events/index.ts';
import { IssuanceStore } from '../../lib/core/store/issuance.ts';
import { LocalKeyFileProvider } from '../../lib/core/store/local-keys.ts';
import { Store } from '../../lib/core/store/store.ts';
import { ensureTable } from '../../lib/core/table.ts';
import { startDynalite } from '../../lib/local/dynalite.ts';
import { freePort } from '../../lib/local/ports.ts';
import { startRedisServer } from '../../lib/local/redis-server.ts';
import type { TestBed } from '../harness/testbed.ts';

export interface ControlStack {
  readonly dynamoEndpoint: string;
  readonly redisPort: number;
  readonly tableName: string;
  readonly keyFile: string;
  readonly client: DynamoDBClient;
  readonly store: Store;
  readonly issuance: IssuanceStore;
  readonly admin: Redis;
  /** Events on a stream, decoded, in the order they were appended. */
  events(stream: string): Promise<EdgeEvent[]>;
}

export interface ControlStackOptions {
  readonly tableName?: string;
  /**
   * Streams a task reads: each gets a consumer group (`task`, from the stream's start) before
   * any test runs, because the Redis bus refuses to publish where no task would receive.
   */
  readonly streams?: readonly string[];
}

/** A real dynalite (with the table) and a real redis-server for one test file. */
export function controlStack(bed: TestBed, opts: ControlStackOptions = {}): ControlStack {
  const tableName = opts.tableName ?? 'edge-control';
  const stack = { tableName, keyFile: join(bed.dir, 'master.key') } as {
    -readonly [K in keyof ControlStack]: ControlStack[K];
  };
  beforeAll(async () => {
    const [dynPort, redisPort] = [await freePort(), await freePort()];
    const dynalite = await startDynalite({ port: dynPort, dir: bed.dir });
    bed.track(dynalite.process);
    bed.track(await startRedisServer({ port: redisPort, dir: bed.dir }));
    stack.dynamoEndpoint = dynalite.endpoint;
    stack.redisPort = redisPort;
    stack.client = dynalite.client();
    await ensureTable(stack.client, tableName);
    stack.store = new Store({
      client: stack.client,
      tableName,
      keys: await LocalKeyFileProvider.open(stack.keyFile),
    });
    stack.issuance = new IssuanceStore(DynamoDBDocumentClient.from(stack.client), tableName, 'test');
    stack.admin = new Redis({ port: redisPort });
    for (const stream of opts.streams ?? [])
      await stack.admin.xgroup('CREATE', stream, 'task', '0', 'MKSTREAM');
    stack.events = async (stream) => {
      const entries = (await stack.admin.xrange(stream, '-', '+')) as [string, string[]][];
      return entries.map(([, f]) => decodeEvent(f[f.indexOf('body') + 1] ?? ''));
    };
    bed.onStop(() => {
      stack.admin.disconnect();
      stack.client.destroy();
    });
  });
  return stack;
}

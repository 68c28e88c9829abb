import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Redis } from 'ioredis';
import { LocalKeyFileProvider } from '../../lib/core/store/local-keys.ts';
import { Store } from '../../lib/core/store/store.ts';
import { ensureTable } from '../../lib/core/table.ts';
import { startDynalite } from '../../lib/local/dynalite.ts';
import { freePort } from '../../lib/local/ports.ts';
import type { ManagedProcess } from '../../lib/local/process.ts';
import { startRedisServer } from '../../lib/local/redis-server.ts';

/** dynalite + redis-server in a scratch directory, for the replication benches. */
export interface BenchStack {
  readonly dir: string;
  readonly store: Store;
  readonly dynamo: DynamoDBClient;
  readonly redis: Redis;
  readonly redisPort: number;
  stop(): Promise<void>;
}

export async function startBenchStack(name: string): Promise<BenchStack> {
  const dir = mkdtempSync(join(tmpdir(), `bench-${name}-`));
  const procs: ManagedProcess[] = [];
  const dynalite = await startDynalite({ port: await freePort(), dir });
  procs.push(dynalite.process);
  const redisPort = await freePort();
  procs.push(await startRedisServer({ port: redisPort, dir }));
  const dynamo = dynalite.client();
  await ensureTable(dynamo, 'bench');
  const store = new Store({
    client: dynamo,
    tableName: 'bench',
    keys: await LocalKeyFileProvider.open(join(dir, 'k')),
  });
  const redis = new Redis({ port: redisPort });
  return {
    dir,
    store,
    dynamo,
    redis,
    redisPort,
    async stop() {
      redis.disconnect();
      dynamo.destroy();
      await Promise.all(procs.map((p) => p.stop()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs fn over items with at most `limit` in flight. */
export async function pool<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

export function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

import { join } from 'node:path';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { Announcer } from '../../lib/core/bus/announcer.ts';
import { makeEvent } from '../../lib/core/events/codec.ts';
import type { EdgeEvent } from '../../lib/core/events/schema.ts';
import { RedisKeys } from '../../lib/core/redis-format.ts';
import { LocalKeyFileProvider } from '../../lib/core/store/local-keys.ts';
import { Store } from '../../lib/core/store/store.ts';
import { ensureTable } from '../../lib/core/table.ts';
import { startDynalite } from '../../lib/local/dynalite.ts';
import { freePort } from '../../lib/local/ports.ts';
import { startRedisServer } from '../../lib/local/redis-server.ts';
import { Replica } from '../../lib/sidecars/listener-runtime/replica.ts';
import { Applier } from '../../lib/sidecars/sqs-listener/apply.ts';
import { bootstrap } from '../../lib/sidecars/sqs-listener/bootstrap.ts';
import type { TestBed } from '../harness/testbed.ts';

export const silent = pino({ level: 'silent' });

/** Real dynalite and redis-server; replicas are key prefixes in the one Redis. */
export class ReplicaFixture {
  readonly published: EdgeEvent[] = [];
  readonly announcer: Announcer;

  private constructor(
    readonly store: Store,
    readonly redis: Redis,
    readonly dynamo: DynamoDBClient,
    readonly redisPort: number,
  ) {
    this.announcer = new Announcer(store, { publish: async (e) => void this.published.push(e) });
  }

  static async start(bed: TestBed): Promise<ReplicaFixture> {
    const dynalite = await startDynalite({ port: await freePort(), dir: bed.dir });
    bed.track(dynalite.process);
    const port = await freePort();
    bed.track(await startRedisServer({ port, dir: bed.dir }));
    const client = dynalite.client();
    await ensureTable(client, 'replica-test');
    const store = new Store({
      client,
      tableName: 'replica-test',
      keys: await LocalKeyFileProvider.open(join(bed.dir, 'master.key')),
    });
    const redis = new Redis({ port });
    bed.onStop(() => {
      redis.disconnect();
      client.destroy();
    });
    return new ReplicaFixture(store, redis, client, port);
  }

  /** One replica (a task's Redis, under its own prefix) and the applier that feeds it. */
  replica(prefix: string): { replica: Replica; applier: Applier; purges: unknown[]; forgotten: string[] } {
    const replica = new Replica(this.redis, new RedisKeys(prefix));
    const purges: unknown[] = [];
    const forgotten: string[] = [];
    const applier = new Applier(replica, this.store, {
      purge: async (p) => void purges.push(p),
      forgetCert: async (d) => void forgotten.push(d),
    });
    return { replica, applier, purges, forgotten };
  }

  bootstrap(replica: Replica): ReturnType<typeof bootstrap> {
    return bootstrap(this.store, this.redis, replica, silent, { segments: 4, pageSize: 50 });
  }

  /** What the redis-listener does after the issuer writes a certificate: persist, then announce. */
  async issue(domain: string, record: Parameters<Store['putCert']>[1]): Promise<void> {
    await this.store.putCert(domain, record);
    this.published.push(makeEvent('cert.issued', record.expiry, { domain }));
  }

  /** Every key under a prefix with its value (JSON parsed), purge hashes excluded. */
  async snapshot(prefix: string): Promise<Record<string, unknown>> {
    const keys = (await this.redis.keys(`${prefix}:*`))
      .filter((k) => !k.startsWith(`${prefix}:@purge:`))
      .sort();
    const out: Record<string, unknown> = {};
    for (const k of keys) {
      out[k.slice(prefix.length)] =
        (await this.redis.type(k)) === 'hash'
          ? await this.redis.hgetall(k)
          : JSON.parse((await this.redis.get(k)) ?? 'null');
    }
    return out;
  }
}

import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { beforeAll, describe, expect, it } from 'vitest';
import { Announcer } from '../../lib/core/bus/announcer.ts';
import { RedisStreamsBus } from '../../lib/core/bus/redis/streams-bus.ts';
import { makeEvent } from '../../lib/core/events/codec.ts';
import { RedisKeys } from '../../lib/core/redis-format.ts';
import { LocalKeyFileProvider } from '../../lib/core/store/local-keys.ts';
import { Store } from '../../lib/core/store/store.ts';
import { ensureTable } from '../../lib/core/table.ts';
import { startDynalite } from '../../lib/local/dynalite.ts';
import { freePort } from '../../lib/local/ports.ts';
import type { ManagedProcess } from '../../lib/local/process.ts';
import { startRedisServer } from '../../lib/local/redis-server.ts';
import { makeCertRecord } from '../../lib/local/self-signed-cert.ts';
import { Replica } from '../../lib/sidecars/listener-runtime/replica.ts';
import type { PurgePayload } from '../../lib/sidecars/sqs-listener/edge-control.ts';
import { EntityLanes } from '../../lib/sidecars/sqs-listener/lanes.ts';
import { type Readiness, SqsListener } from '../../lib/sidecars/sqs-listener/service.ts';
import { TestBed } from '../harness/testbed.ts';
import { until } from './bus-contract.ts';
import { silent } from './replica-fixture.ts';

const bed = new TestBed('convergence');
const PREFIX = 'edge';
const keys = new RedisKeys(PREFIX);
let taskPort = 0;
let busPort = 0;
let taskRedis: ManagedProcess;
let busRedis: ManagedProcess;
let redis: Redis;
let store: Store;
let announcer: Announcer;
let listener: SqsListener;
const purges: PurgePayload[] = [];
const readiness: Readiness[] = [];

const busOptions = (group: string) => ({
  redis: { port: busPort, maxRetriesPerRequest: 1 },
  stream: 'conv:events',
  group,
  blockMs: 200,
  retryMs: 100,
});

beforeAll(async () => {
  const dynalite = await startDynalite({ port: await freePort(), dir: bed.dir });
  bed.track(dynalite.process);
  const client = dynalite.client();
  await ensureTable(client, 'convergence');
  store = new Store({
    client,
    tableName: 'convergence',
    keys: await LocalKeyFileProvider.open(join(bed.dir, 'master.key')),
  });
  taskPort = await freePort();
  busPort = await freePort();
  taskRedis = bed.track(await startRedisServer({ port: taskPort, dir: bed.dir }));
  busRedis = bed.track(await startRedisServer({ port: busPort, dir: bed.dir }));
  const publisher = new RedisStreamsBus(busOptions('control-plane'));
  announcer = new Announcer(store, publisher);
  // In the table before any task exists: the bootstrap brings them.
  await store.putTenant('acme', { type: 'http', url: 'http://127.0.0.1:8080' }, 1);
  await store.putDomain('www.acme.test', 'acme', 1);
  const record = await makeCertRecord(['www.acme.test']);
  await store.putCert('www.acme.test', record);

  redis = new Redis({ port: taskPort, maxRetriesPerRequest: 1 });
  redis.on('error', () => {});
  listener = new SqsListener({
    bus: new RedisStreamsBus(busOptions('region-a.task-1')),
    store,
    redis,
    replica: new Replica(redis, keys),
    edge: { purge: async (p) => void purges.push(p) },
    log: silent,
    bootstrap: { segments: 2, pageSize: 50 },
    convergence: { watchMs: 200, tableProbeMs: 500, busStaleMs: 3000, retryMs: 200 },
    onReadiness: (r) => void readiness.push(r),
  });
  await listener.start();
  bed.onStop(async () => {
    await listener.stop().catch(() => {});
    redis.disconnect();
    await publisher.close({ keepSubscription: true }).catch(() => {});
    client.destroy();
  });
}, 60_000);

const restart = async (which: 'task' | 'bus'): Promise<void> => {
  const port = which === 'task' ? taskPort : busPort;
  const proc = which === 'task' ? taskRedis : busRedis;
  await proc.kill();
  const again = bed.track(await startRedisServer({ port, dir: bed.dir }));
  if (which === 'task') taskRedis = again;
  else busRedis = again;
};

describe("convergence of the task's Redis", () => {
  it('bootstrapped at start: the records are there and the listener is ready', async () => {
    expect(
      await redis.exists(keys.tenant('acme'), keys.domain('www.acme.test'), keys.cert('www.acme.test')),
    ).toBe(3);
    await until('ready', () => listener.readiness().ready);
    expect(listener.counters.bootstraps.get('start')).toBe(1);
  });

  it('a Redis killed -9 and restarted empty is bootstrapped again within 10 s', async () => {
    await restart('task');
    const t0 = Date.now();
    await until(
      'the tenant, domain and certificate are back',
      async () =>
        (await redis
          .exists(keys.tenant('acme'), keys.domain('www.acme.test'), keys.cert('www.acme.test'))
          .catch(() => 0)) === 3,
      10_000,
    );
    const ms = Date.now() - t0;
    expect(ms).toBeLessThan(10_000);
    await until('counted as a restart', () => listener.counters.bootstraps.get('redis restarted') === 1);
    // It was not ready meanwhile, and is again.
    expect(readiness.some((r) => !r.ready && !r.redis)).toBe(true);
    await until('ready again', () => listener.readiness().ready);
  });

  it('a flushed Redis (same process, data lost) is bootstrapped again', async () => {
    const admin = new Redis({ port: taskPort });
    await admin.flushall();
    admin.disconnect();
    await until('the tenant is back', async () => (await redis.exists(keys.tenant('acme'))) === 1, 10_000);
    await until('counted as data loss', () => listener.counters.bootstraps.get('redis lost data') === 1);
  });

  it('after a bus restart the listener resubscribes, bootstraps (a gap), and a purge reaches it within 5 s', async () => {
    await restart('bus');
    const t0 = Date.now();
    await announcer.purge({ scope: 'tenant', tenant: 'acme' });
    await until('the purge reached the listener', () => purges.length === 1, 5000);
    expect(Date.now() - t0).toBeLessThan(5000);
    await until('a bus-gap bootstrap', () => listener.counters.bootstraps.get('bus gap') === 1);
    await until('ready again', () => listener.readiness().ready);
  });

  it('the bus down is a readiness matter only; the listener keeps applying once it returns', async () => {
    await busRedis.kill();
    await until('not ready: bus', () => !listener.readiness().ready && !listener.readiness().bus, 10_000);
    expect(listener.readiness().redis).toBe(true);
    busRedis = bed.track(await startRedisServer({ port: busPort, dir: bed.dir }));
    await announcer.upsertTenant('globex', { type: 'http', url: 'http://127.0.0.1:8081' });
    await until(
      'the new tenant applied',
      async () => (await redis.exists(keys.tenant('globex'))) === 1,
      10_000,
    );
    await until('ready again', () => listener.readiness().ready, 10_000);
  });
});

describe('events applied concurrently per entity', () => {
  it('an event stuck on a Redis stall does not hold back a purge for another tenant behind it', async () => {
    const publisher = new RedisStreamsBus(busOptions('control-plane'));
    try {
      const admin = new Redis({ port: taskPort });
      const before = purges.length;
      // Writes (the versioned apply script) stall for 3 s; the purge goes to the edge, not Redis.
      await admin.call('CLIENT', 'PAUSE', '3000', 'WRITE');
      const t0 = Date.now();
      await publisher.publish(
        makeEvent('tenant.upserted', 1e12, {
          id: 'stuck',
          origin: { type: 'http', url: 'http://127.0.0.1:9' } as never,
        }),
      );
      await publisher.publish(
        makeEvent('cache.purge', Date.now(), { scope: 'tenant', tenant: 'other', generation: Date.now() }),
      );
      await until('the purge behind the stuck event', () => purges.length === before + 1, 2500);
      expect(Date.now() - t0).toBeLessThan(2500);
      expect(await admin.exists(keys.tenant('stuck'))).toBe(0);
      await until(
        'the stuck event applied after the stall',
        async () => (await admin.exists(keys.tenant('stuck'))) === 1,
        10_000,
      );
      admin.disconnect();
    } finally {
      await publisher.close({ keepSubscription: true });
    }
  });

  it('events of one entity run in the order they came, one at a time', async () => {
    const lanes = new EntityLanes();
    const log: string[] = [];
    const step =
      (name: string, ms: number, fail = false) =>
      async () => {
        log.push(`start ${name}`);
        await sleep(ms);
        log.push(`end ${name}`);
        if (fail) throw new Error(name);
      };
    const all = [
      lanes.run('tenant:a', step('a1', 60, true)).catch(() => {}),
      lanes.run('tenant:b', step('b1', 10)),
      lanes.run('tenant:a', step('a2', 10)),
    ];
    await Promise.all(all);
    expect(log.indexOf('end a1')).toBeLessThan(log.indexOf('start a2'));
    expect(log.indexOf('end b1')).toBeLessThan(log.indexOf('end a1'));
    expect(lanes.size).toBe(0);
  });
});

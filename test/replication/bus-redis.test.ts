import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bus } from '../../lib/core/bus/port.ts';
import {
  NoSubscriberError,
  RedisStreamsBus,
  type RedisStreamsBusOptions,
} from '../../lib/core/bus/redis/streams-bus.ts';
import { makeEvent } from '../../lib/core/events/codec.ts';
import type { EdgeEvent } from '../../lib/core/events/schema.ts';
import { freePort } from '../../lib/local/ports.ts';
import type { ManagedProcess } from '../../lib/local/process.ts';
import { startRedisServer } from '../../lib/local/redis-server.ts';
import { TestBed } from '../harness/testbed.ts';
import { busContract, until } from './bus-contract.ts';

const bed = new TestBed('bus-redis');
const STREAM = 'test:events';
let port = 0;
let admin: Redis;

beforeAll(async () => {
  port = await freePort();
  bed.track(await startRedisServer({ port, dir: bed.dir }));
  admin = new Redis({ port });
  bed.onStop(() => admin.disconnect());
});

const bus = (group: string) =>
  new RedisStreamsBus({ redis: { port }, stream: STREAM, group, retryMs: 50, blockMs: 200, maxAttempts: 5 });

busContract('redis', () => ({
  bus,
  async publishRaw(body) {
    await admin.xadd(STREAM, '*', 'type', 'raw', 'body', body);
  },
  async deadLetters() {
    const entries = (await admin.xrange(`${STREAM}:dead`, '-', '+')) as [string, string[]][];
    return entries.map(([, f]) => ({
      reason: f[f.indexOf('reason') + 1] ?? '',
      body: f[f.indexOf('body') + 1] ?? '',
    }));
  },
  async subscriptionExists(b: Bus) {
    const groups = (await admin.xinfo('GROUPS', STREAM)) as unknown[][];
    return groups.some((g) => String(g[1]) === b.subscriptionName);
  },
  async makeStale(b: Bus) {
    await admin.hset(`${STREAM}:heartbeats`, b.subscriptionName, String(Date.now() - 3_600_000));
  },
}));

describe('redis bus: heals after the bus Redis restarts', () => {
  let healPort = 0;
  let server: ManagedProcess;
  const open: RedisStreamsBus[] = [];
  const healBus = (group: string, extra: Partial<RedisStreamsBusOptions> = {}) => {
    const b = new RedisStreamsBus({
      redis: { port: healPort, maxRetriesPerRequest: 1 },
      stream: 'heal:events',
      group,
      retryMs: 50,
      blockMs: 200,
      ...extra,
    });
    open.push(b);
    return b;
  };

  beforeAll(async () => {
    healPort = await freePort();
    server = bed.track(await startRedisServer({ port: healPort, dir: bed.dir }));
  });
  afterAll(async () => {
    await Promise.all(open.map((b) => b.close({ keepSubscription: true }).catch(() => {})));
  });

  it('consumers recreate their groups (NOGROUP) and a purge published right after the restart reaches every task', async () => {
    const tasks = await Promise.all(
      ['region-a', 'region-b', 'region-c'].map(async (name) => {
        const b = healBus(name);
        const got: EdgeEvent[] = [];
        const gaps: string[] = [];
        await b.open();
        await b.consume(async (e) => void got.push(e), { onResubscribed: (r) => void gaps.push(r) });
        return { b, got, gaps };
      }),
    );
    const publisher = healBus('control-plane');
    await publisher.publish(
      makeEvent('domain.upserted', 1, { domain: 'before.example.com', tenant: 'acme' }),
    );
    await until('every task got the first event', () => tasks.every((t) => t.got.length === 1));

    await server.kill();
    server = bed.track(await startRedisServer({ port: healPort, dir: bed.dir }));
    const restarted = Date.now();
    const purge = makeEvent('cache.purge', Date.now(), {
      scope: 'tenant',
      tenant: 'acme',
      generation: Date.now(),
    });
    // Confirmed only once some task reads the stream again.
    await publisher.publish(purge);
    await until(
      'the purge reached every task',
      () => tasks.every((t) => t.got.some((e) => e.id === purge.id)),
      5000,
    );
    const reachedMs = Date.now() - restarted;
    expect(reachedMs).toBeLessThan(5000);
    for (const t of tasks) {
      expect(t.b.stats.resubscribed).toBeGreaterThanOrEqual(1);
      expect(t.gaps[0]).toContain('NOGROUP');
      expect(await t.b.hasGroup()).toBe(true);
    }
  });

  it('a publish that no task can receive fails loudly instead of resolving', async () => {
    const lonely = healBus('control-plane', { stream: 'heal:nobody', confirmWithinMs: 300 });
    await expect(
      lonely.publish(makeEvent('cache.purge', 7, { scope: 'tenant', tenant: 'acme', generation: 7 })),
    ).rejects.toThrow(NoSubscriberError);
  });

  it('a publish while the bus Redis is down fails', async () => {
    await server.kill();
    const down = healBus('control-plane', {
      redis: { port: healPort, maxRetriesPerRequest: 1, retryStrategy: () => null },
    });
    await expect(
      down.publish(makeEvent('cache.purge', 8, { scope: 'tenant', tenant: 'acme', generation: 8 })),
    ).rejects.toThrow();
    server = bed.track(await startRedisServer({ port: healPort, dir: bed.dir }));
  });
});

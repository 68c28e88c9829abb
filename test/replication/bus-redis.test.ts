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

describe('redis bus: every entry handled is acknowledged (no pending entry is left behind)', () => {
  const ACK_STREAM = 'ack:events';
  const open: RedisStreamsBus[] = [];
  const ackBus = (group: string, extra: Partial<RedisStreamsBusOptions> = {}) => {
    const b = new RedisStreamsBus({
      redis: { port },
      stream: ACK_STREAM,
      group,
      retryMs: 50,
      blockMs: 200,
      maxAttempts: 5,
      ...extra,
    });
    open.push(b);
    return b;
  };
  const pending = async (group: string) =>
    Number(((await admin.xpending(ACK_STREAM, group)) as unknown[])[0]);
  const event = (id: string) => makeEvent('tenant.removed', 1, { id });
  const unknownType = JSON.stringify({ id: 'u-1', type: 'tenant.renamed', version: 1, payload: {} });

  afterAll(async () => {
    await Promise.all(open.map((b) => b.close().catch(() => {})));
  });

  it('acknowledges an unknown type and an event whose handler failed, then succeeded on retry', async () => {
    const b = ackBus('ack-retry');
    await b.open();
    const seen: string[] = [];
    let failOnce = true;
    await b.consume(async (e) => {
      if (e.type === 'tenant.removed' && e.payload.id === 'flaky' && failOnce) {
        failOnce = false;
        throw new Error('redis stalled');
      }
      seen.push(e.id);
    });
    const publisher = ackBus('ack-publisher');
    const flaky = event('flaky');
    await publisher.publishRaw(unknownType, 'tenant.renamed');
    await publisher.publish(flaky);
    await publisher.publish(event('plain'));
    await until('both events handled', () => seen.length === 2, 10_000);
    expect(seen).toContain(flaky.id);
    await until('every entry acknowledged', async () => (await pending('ack-retry')) === 0, 10_000);
    expect(b.stats.ignoredByType.get('tenant.renamed')).toBe(1);
  });

  it('an acknowledgement that failed (the bus blipped as it was sent) is made again', async () => {
    const b = ackBus('ack-lost', { pendingSweepMs: 60_000 });
    await b.open();
    const cmd = (b as unknown as { cmd: Redis }).cmd;
    const xack = cmd.xack.bind(cmd);
    let ackFails = 1;
    cmd.xack = ((...args: Parameters<typeof xack>) => {
      if (ackFails-- > 0) return Promise.reject(new Error('Connection is closed.'));
      return xack(...args);
    }) as typeof cmd.xack;
    const seen: string[] = [];
    await b.consume(async (e) => void seen.push(e.id));
    const publisher = ackBus('ack-publisher-1');
    const lost = event('lost-ack');
    await publisher.publish(lost);
    await until('handled', () => seen.includes(lost.id), 10_000);
    // Not left for the periodic sweep (a minute here): retried like a failed handler.
    await until('acknowledged after all', async () => (await pending('ack-lost')) === 0, 5_000);
    expect(ackFails).toBeLessThan(0);
  });

  it('delivers and acknowledges entries a killed consumer of the same group left pending', async () => {
    // A task's listener read an entry and was killed -9 before acknowledging it; the restarted
    // listener opens the same group (BUSYGROUP) and must take that entry over.
    const early = ackBus('ack-restart');
    await early.open();
    const publisher = ackBus('ack-publisher-2');
    const orphan = event('orphan');
    await publisher.publish(orphan);
    await admin.call('XREADGROUP', 'GROUP', 'ack-restart', 'task', 'COUNT', 10, 'STREAMS', ACK_STREAM, '>');
    expect(await pending('ack-restart')).toBe(1);

    const restarted = ackBus('ack-restart');
    await restarted.open();
    const got: string[] = [];
    await restarted.consume(async (e) => void got.push(e.id));
    await until('the orphaned entry delivered', () => got.includes(orphan.id), 10_000);
    await until('and acknowledged', async () => (await pending('ack-restart')) === 0, 10_000);
  });
});

import { Redis } from 'ioredis';
import { beforeAll } from 'vitest';
import type { Bus } from '../../lib/core/bus/port.ts';
import { RedisStreamsBus } from '../../lib/core/bus/redis/streams-bus.ts';
import { freePort } from '../../lib/local/ports.ts';
import { startRedisServer } from '../../lib/local/redis-server.ts';
import { TestBed } from '../harness/testbed.ts';
import { busContract } from './bus-contract.ts';

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

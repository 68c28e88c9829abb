import { Redis } from 'ioredis';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Announcer } from '../../lib/core/bus/announcer.ts';
import type { EdgeEvent } from '../../lib/core/events/schema.ts';
import { RedisKeys } from '../../lib/core/redis-format.ts';
import { makeCertRecord } from '../../lib/local/self-signed-cert.ts';
import { Replica } from '../../lib/sidecars/listener-runtime/replica.ts';
import { KeyspaceNotificationsOffError, RedisListener } from '../../lib/sidecars/redis-listener/service.ts';
import { TestBed } from '../harness/testbed.ts';
import { until } from './bus-contract.ts';
import { ReplicaFixture, silent } from './replica-fixture.ts';

const bed = new TestBed('redis-listener');
let fx: ReplicaFixture;
const running: { listener: RedisListener; sub: Redis }[] = [];

beforeAll(async () => {
  fx = await ReplicaFixture.start(bed);
});

afterEach(async () => {
  for (const r of running.splice(0)) {
    await r.listener.stop();
    r.sub.disconnect();
  }
});

async function listen(
  prefix: string,
): Promise<{ listener: RedisListener; published: EdgeEvent[]; replica: Replica }> {
  // Connected before it subscribes, as bin/redis-listener.ts does: a subscription sent during
  // ioredis's ready check makes Redis refuse the check's INFO and the connection start over.
  const sub = new Redis({ port: fx.redisPort, lazyConnect: true });
  await sub.connect();
  const replica = new Replica(fx.redis, new RedisKeys(prefix));
  const published: EdgeEvent[] = [];
  const listener = new RedisListener({
    redis: fx.redis,
    subscriber: sub,
    replica,
    store: fx.store,
    publisher: { publish: async (e) => void published.push(e) },
    log: silent,
  });
  await listener.start();
  running.push({ listener, sub });
  return { listener, published, replica };
}

describe('redis-listener', () => {
  it('persists and announces a certificate the issuer wrote, once', async () => {
    const { listener, published } = await listen('rl1');
    const record = await makeCertRecord(['new.example.com']);
    await fx.redis.set('rl1:new.example.com:latest', JSON.stringify(record));
    await until('the announcement', () => published.length === 1);
    expect(published[0]).toMatchObject({
      type: 'cert.issued',
      version: record.expiry,
      payload: { domain: 'new.example.com' },
    });
    expect(await fx.store.getCert('new.example.com')).toEqual({
      state: 'live',
      version: record.expiry,
      record,
    });
    // The same bytes written again (lua-resty-auto-ssl re-saving, say): known, not announced again.
    await fx.redis.set('rl1:new.example.com:latest', JSON.stringify(record));
    await until('the second notification', () => listener.counts.replicated === 1);
    expect(published).toHaveLength(1);
  });

  it('does not echo a certificate the sqs-listener replicated', async () => {
    const { listener, published, replica } = await listen('rl2');
    const record = await makeCertRecord(['replicated.example.com']);
    await fx.store.putCert('replicated.example.com', record);
    await replica.apply({
      op: 'set',
      entity: 'cert:replicated.example.com',
      version: record.expiry,
      key: 'rl2:replicated.example.com:latest',
      value: JSON.stringify(record),
    });
    await until('the notification', () => listener.counts.replicated === 1);
    expect(published).toEqual([]);
  });

  it('ignores invalid records and certificates older than the store’s', async () => {
    const { listener, published } = await listen('rl3');
    await fx.redis.set('rl3:junk.example.com:latest', '{"fullchain_pem":1}');
    const newer = await makeCertRecord(['older.example.com'], 60);
    await fx.store.putCert('older.example.com', newer);
    await fx.redis.set(
      'rl3:older.example.com:latest',
      JSON.stringify({ ...newer, expiry: newer.expiry - 86400 }),
    );
    await until('both handled', () => listener.counts.invalid === 1 && listener.counts.older === 1);
    expect(published).toEqual([]);
  });

  it('catches up at start on certificates written while it was down', async () => {
    const record = await makeCertRecord(['offline.example.com']);
    await fx.redis.set('rl4:offline.example.com:latest', JSON.stringify(record));
    const { published } = await listen('rl4');
    await until('the announcement', () => published.length === 1);
    expect(published[0]?.payload).toEqual({ domain: 'offline.example.com' });
  });

  it('marks a verified domain active as its certificate lands: table first, then domain.status', async () => {
    const noop = new Announcer(fx.store, { publish: async () => {} });
    await noop.addDomain('landing.example.com', 'acme', {
      status: 'issuing',
      verifiedAt: 1,
      verifyToken: 't',
    });
    const { published } = await listen('rl6');
    const record = await makeCertRecord(['landing.example.com']);
    await fx.redis.set('rl6:landing.example.com:latest', JSON.stringify(record));
    await until('both events', () => published.length === 2);
    const stored = await fx.store.getDomain('landing.example.com');
    expect(stored).toMatchObject({ status: 'active', verifiedAt: 1 });
    expect(published.map((e) => [e.type, e.version, e.payload])).toEqual([
      ['cert.issued', record.expiry, { domain: 'landing.example.com' }],
      [
        'domain.status',
        stored?.version,
        { domain: 'landing.example.com', tenant: 'acme', status: 'active', previous: 'issuing' },
      ],
    ]);
  });

  it('leaves pending, moved-away and pre-status domains as they are', async () => {
    const noop = new Announcer(fx.store, { publish: async () => {} });
    await noop.addDomain('pending.example.com', 'acme', { status: 'pending_verification', verifyToken: 't' });
    await noop.addDomain('moved.example.com', 'acme', {
      status: 'moved_away',
      verifiedAt: 1,
      reason: 'gone',
    });
    await noop.upsertDomain('legacy.example.com', 'acme');
    const { listener, published } = await listen('rl7');
    for (const domain of ['pending.example.com', 'moved.example.com', 'legacy.example.com']) {
      await fx.redis.set(`rl7:${domain}:latest`, JSON.stringify(await makeCertRecord([domain])));
    }
    await until('all three persisted', () => listener.counts.published === 3);
    expect(published.map((e) => e.type)).toEqual(['cert.issued', 'cert.issued', 'cert.issued']);
    expect((await fx.store.getDomain('pending.example.com'))?.status).toBe('pending_verification');
    expect((await fx.store.getDomain('moved.example.com'))?.status).toBe('moved_away');
    expect((await fx.store.getDomain('legacy.example.com'))?.status).toBeUndefined();
  });

  it('refuses to start when keyspace notifications are off', async () => {
    const admin = new Redis({ port: fx.redisPort });
    const [, before = ''] = (await admin.config('GET', 'notify-keyspace-events')) as string[];
    await admin.config('SET', 'notify-keyspace-events', '');
    try {
      const sub = new Redis({ port: fx.redisPort });
      const listener = new RedisListener({
        redis: fx.redis,
        subscriber: sub,
        replica: new Replica(fx.redis, new RedisKeys('rl5')),
        store: fx.store,
        publisher: { publish: async () => {} },
        log: silent,
      });
      await expect(listener.start()).rejects.toThrow(KeyspaceNotificationsOffError);
      sub.disconnect();
    } finally {
      await admin.config('SET', 'notify-keyspace-events', before);
      admin.disconnect();
    }
  });
});

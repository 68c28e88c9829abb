import { Redis } from 'ioredis';
import { beforeAll, describe, expect, it } from 'vitest';
import { seededRandom, withFaults } from '../../lib/core/bus/faults.ts';
import type { EdgeEvent } from '../../lib/core/events/schema.ts';
import { RedisKeys } from '../../lib/core/redis-format.ts';
import { makeCertRecord } from '../../lib/local/self-signed-cert.ts';
import { Replica } from '../../lib/sidecars/listener-runtime/replica.ts';
import { RedisListener } from '../../lib/sidecars/redis-listener/service.ts';
import { TestBed } from '../harness/testbed.ts';
import { until } from './bus-contract.ts';
import { ReplicaFixture, silent } from './replica-fixture.ts';

// A status change moves the domain's version in the table (the redis-listener's markActive when a
// certificate lands, the control plane's refresh, verification). The chaos run found regions
// keeping the older version until a bootstrap: domain.status was not applied to the edge record.
// Here the events alone must leave every region with what a bootstrap from the table writes.
const bed = new TestBed('domain-status');
let fx: ReplicaFixture;

beforeAll(async () => {
  fx = await ReplicaFixture.start(bed);
  await fx.announcer.upsertTenant('acme', { type: 'http', url: 'http://127.0.0.1:8080' });
});

/** The domain record a bootstrap from the table writes (undefined: none). */
async function fromTable(prefix: string, domain: string): Promise<unknown> {
  const { replica } = fx.replica(prefix);
  await fx.bootstrap(replica);
  return (await fx.snapshot(prefix))[`:@domain:${domain}`];
}

describe('domain.status reaches the edge record', () => {
  it('a certificate landing (redis-listener markActive) leaves every region at the table version', async () => {
    const domain = 'landed.acme.test';
    const from = fx.published.length;
    // As `domain add --preverified` does: verified at version 1 (domain.status + domain.upserted).
    await fx.announcer.addDomain(domain, 'acme', { status: 'verified', verifiedAt: 1, verifyToken: 't' });
    // The issuer writes the certificate into one task's Redis; its redis-listener persists it,
    // announces cert.issued and marks the domain active (version 2 in the table, domain.status).
    const sub = new Redis({ port: fx.redisPort, lazyConnect: true });
    await sub.connect();
    const published: EdgeEvent[] = [];
    const listener = new RedisListener({
      redis: fx.redis,
      subscriber: sub,
      replica: new Replica(fx.redis, new RedisKeys('issuing')),
      store: fx.store,
      publisher: { publish: async (e) => void published.push(e) },
      log: silent,
    });
    await listener.start();
    try {
      await fx.redis.set(`issuing:${domain}:latest`, JSON.stringify(await makeCertRecord([domain])));
      await until('the domain marked active', () => published.some((e) => e.type === 'domain.status'));
    } finally {
      await listener.stop();
      sub.disconnect();
    }
    const stored = await fx.store.getDomain(domain);
    expect(stored).toMatchObject({ status: 'active', version: 2 });

    const { applier } = fx.replica('landed');
    for (const e of [...fx.published.slice(from), ...published]) await applier.apply(e);
    const record = (await fx.snapshot('landed'))[`:@domain:${domain}`];
    expect(record).toEqual({ domain, tenant: 'acme', version: 2 });
    expect(record).toEqual(await fromTable('landed-boot', domain));
  });

  it('every status a domain goes through, in any order and duplicated, ends where the bootstrap does', async () => {
    const domain = 'journey.acme.test';
    const from = fx.published.length;
    await fx.announcer.addDomain(domain, 'acme', { status: 'pending_verification', verifyToken: 't' });
    // The owner proves control: verified, and upserted for the edge, at version 2.
    await fx.announcer.changeDomainStatus(
      domain,
      'acme',
      { status: 'verified', previous: 'pending_verification', verifiedAt: 5 },
      { upsert: true },
    );
    for (const [status, previous, reason] of [
      ['issuing', 'verified'],
      ['failed', 'issuing', 'rate limited'],
      ['active', 'failed'],
      ['moved_away', 'active', 'DNS gone'],
    ] as const) {
      await fx.announcer.changeDomainStatus(domain, 'acme', {
        status,
        previous,
        ...(reason ? { reason } : {}),
      });
    }
    const events = fx.published.slice(from);
    const expected = await fromTable('journey-boot', domain);
    // moved_away keeps serving (never an automatic suspension), at the newest version.
    expect(expected).toEqual({ domain, tenant: 'acme', version: 6 });

    const inOrder = fx.replica('journey');
    for (const e of events) await inOrder.applier.apply(e);
    expect((await fx.snapshot('journey'))[`:@domain:${domain}`]).toEqual(expected);

    const chaos = fx.replica('journey-chaos');
    const faulty = withFaults(
      (e) => chaos.applier.apply(e).then(() => {}),
      { duplicate: 0.5, reorder: 0.5, drop: 0 },
      seededRandom(3),
    );
    for (const e of [...events].reverse()) await faulty.handler(e);
    for (const e of events) await faulty.handler(e);
    await faulty.flush();
    expect(await fx.snapshot('journey-chaos')).toEqual(await fx.snapshot('journey'));
  });

  it('a pending domain is not served; a status event never brings back a removed domain', async () => {
    const pending = 'pending.acme.test';
    const removed = 'removed.acme.test';
    const from = fx.published.length;
    await fx.announcer.addDomain(pending, 'acme', { status: 'pending_verification', verifyToken: 't' });
    await fx.announcer.addDomain(removed, 'acme', { status: 'verified', verifiedAt: 1, verifyToken: 't' });
    const late = await fx.announcer.changeDomainStatus(removed, 'acme', {
      status: 'active',
      previous: 'verified',
    });
    await fx.announcer.removeDomain(removed);
    const events = fx.published.slice(from);
    const statusOfRemoved = events.find(
      (e) => e.type === 'domain.status' && e.payload.domain === removed && e.version === late,
    ) as EdgeEvent;

    const { applier } = fx.replica('gone');
    for (const e of events) await applier.apply(e);
    // The status change arrives again after the removal (a redelivery): it must not undo it.
    expect(await applier.apply(statusOfRemoved)).toBe('stale');
    const snap = await fx.snapshot('gone');
    expect(snap[`:@domain:${pending}`]).toBeUndefined();
    expect(snap[`:@domain:${removed}`]).toBeUndefined();
    expect(await fromTable('gone-boot', pending)).toBeUndefined();
  });
});

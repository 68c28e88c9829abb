import { beforeAll, describe, expect, it } from 'vitest';
import { seededRandom, withFaults } from '../../lib/core/bus/faults.ts';
import type { EdgeEvent } from '../../lib/core/events/schema.ts';
import type { CertRecord } from '../../lib/core/redis-format.ts';
import { makeCertRecord } from '../../lib/local/self-signed-cert.ts';
import { TestBed } from '../harness/testbed.ts';
import { ReplicaFixture } from './replica-fixture.ts';

const bed = new TestBed('idempotency');
let fx: ReplicaFixture;
let events: EdgeEvent[];

const renewed = (r: CertRecord, days: number): CertRecord => ({ ...r, expiry: r.expiry + days * 86400 });

beforeAll(async () => {
  fx = await ReplicaFixture.start(bed);
  const base = await makeCertRecord(['a.example.com']);
  const a = fx.announcer;
  await a.upsertTenant('acme', { type: 'http', url: 'http://127.0.0.1:8080' });
  await a.upsertTenant('globex', {
    type: 's3-website',
    endpoint: 'b.s3-website.eu-west-1.amazonaws.com',
    prefix: 'g/',
  });
  await a.upsertDomain('www.acme.test', 'acme');
  await a.upsertDomain('shop.acme.test', 'acme');
  await a.removeDomain('shop.acme.test');
  await a.upsertDomain('old.globex.test', 'globex');
  await a.removeDomain('old.globex.test');
  await a.upsertDomain('old.globex.test', 'globex');
  await a.removeTenant('globex');
  await fx.issue('www.acme.test', base);
  await fx.issue('www.acme.test', renewed(base, 30));
  await fx.issue('revoked.acme.test', base);
  await a.revokeCert('revoked.acme.test', 'key compromise');
  await fx.issue('gone.acme.test', base);
  await a.revokeCert('gone.acme.test');
  await fx.issue('gone.acme.test', renewed(base, 60));
  await a.purge({ scope: 'tenant', tenant: 'acme' });
  events = [...fx.published];
});

describe('events applied in any order, any number of times, converge', () => {
  it('in order: the reference state; the edge forgets each certificate that changed', async () => {
    const { applier, forgotten } = fx.replica('inorder');
    for (const e of events) await applier.apply(e);
    expect([...new Set(forgotten)].sort()).toEqual(['gone.acme.test', 'revoked.acme.test', 'www.acme.test']);
    const s = await fx.snapshot('inorder');
    expect(Object.keys(s)).toEqual([
      ':@domain:old.globex.test',
      ':@domain:www.acme.test',
      ':@tenant:acme',
      ':@versions',
      ':gone.acme.test:latest',
      ':www.acme.test:latest',
    ]);
    expect((s[':www.acme.test:latest'] as CertRecord).expiry).toBeGreaterThan(Date.now() / 1000 + 50 * 86400);
  });

  it('duplicated and reordered delivery leaves the same state', async () => {
    const { applier, purges } = fx.replica('chaos');
    const faulty = withFaults(
      (e) => applier.apply(e).then(() => {}),
      { duplicate: 0.5, reorder: 0.5, drop: 0 },
      seededRandom(7),
    );
    for (const e of [...events].reverse()) await faulty.handler(e);
    for (const e of events) await faulty.handler(e);
    await faulty.flush();
    expect(faulty.counts.duplicated + faulty.counts.reordered).toBeGreaterThan(0);
    expect(await fx.snapshot('chaos')).toEqual(await fx.snapshot('inorder'));
    // Purges are passed on with their generation every time; the edge makes replays no-ops.
    expect(new Set(purges.map((p) => JSON.stringify(p))).size).toBe(1);
  });

  it('dropped events, then a bootstrap, then late stragglers leave the same state', async () => {
    const { applier, replica } = fx.replica('dropped');
    const faulty = withFaults(
      (e) => applier.apply(e).then(() => {}),
      { duplicate: 0, reorder: 0, drop: 0.6 },
      seededRandom(11),
    );
    for (const e of events) await faulty.handler(e);
    expect(faulty.counts.dropped).toBeGreaterThan(0);
    await fx.bootstrap(replica);
    // Old events still in flight arrive after the bootstrap: they must not undo anything.
    for (const e of events.slice(0, Math.ceil(events.length / 2))) await applier.apply(e);
    expect(await fx.snapshot('dropped')).toEqual(await fx.snapshot('inorder'));
  });

  it('an empty replica bootstrapped from the store alone matches too', async () => {
    const { replica } = fx.replica('fresh');
    const result = await fx.bootstrap(replica);
    expect(result.certificates).toBe(2);
    expect(await fx.snapshot('fresh')).toEqual(await fx.snapshot('inorder'));
  });

  it('an add that arrives after a newer remove does not undo it', async () => {
    const { applier } = fx.replica('tomb');
    const add = events.find((e) => e.type === 'domain.upserted' && e.payload.domain === 'shop.acme.test');
    const remove = events.find((e) => e.type === 'domain.removed' && e.payload.domain === 'shop.acme.test');
    if (!add || !remove) throw new Error('fixture lacks the shop.acme.test events');
    expect(await applier.apply(remove)).toBe('applied');
    expect(await applier.apply(add)).toBe('stale');
    expect(await fx.redis.exists('tomb:@domain:shop.acme.test')).toBe(0);
  });
});

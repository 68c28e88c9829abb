import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeEvent } from '../../lib/core/events/codec.ts';
import type { CertRecord } from '../../lib/core/redis-format.ts';
import { type LocalRegion, LocalRegions } from '../../lib/local/regions.ts';
import { makeCertRecord } from '../../lib/local/self-signed-cert.ts';
import { TestOrigin } from '../harness/origin.ts';
import { TestBed } from '../harness/testbed.ts';
import { until } from '../replication/bus-contract.ts';
import { fingerprint, get, RegionClients, served } from './helpers.ts';

const bed = new TestBed('regions');
let regions: LocalRegions;
let c: RegionClients;
let origin: TestOrigin;
let a: LocalRegion;
let b: LocalRegion;
let cc: LocalRegion;
const TENANT_HOST = 'acme.platform.test';

const https = () => regions.ports.https;
const hasKey = (region: LocalRegion, key: string) =>
  until(`${key} in ${region.spec.name}`, async () => (await c.of(region).exists(key)) === 1);

beforeAll(async () => {
  origin = new TestOrigin();
  await origin.start();
  bed.onStop(() => origin.stop());
  regions = await LocalRegions.start({
    dir: bed.dir,
    edge: { cache: { defaultTtlSeconds: 300 } },
  });
  bed.onStop(() => regions.stop());
  [a, b, cc] = regions.regions as [LocalRegion, LocalRegion, LocalRegion];
  c = await RegionClients.open(regions);
  bed.onStop(() => c.close());
});

afterAll(async () => {
  await bed.stopAll();
});

describe('three local regions', () => {
  it('serves in B and C, over TLS, a certificate written into A’s Redis, announced once', async () => {
    const record = await makeCertRecord(['shop.example.com']);
    // What the native issuer or lua-resty-auto-ssl does: write the key in the task's Redis.
    await c.of(a).set('edge:shop.example.com:latest', JSON.stringify(record));
    for (const r of [b, cc]) {
      await hasKey(r, 'edge:shop.example.com:latest');
      const got = await served(r.spec.address, https(), 'shop.example.com');
      expect(got.san).toBe('DNS:shop.example.com');
      expect(got.fingerprint).toBe(fingerprint(record));
    }
    const stored = await c.store.getCert('shop.example.com');
    expect(stored).toMatchObject({ state: 'live', version: record.expiry, record });
    // B's and C's redis-listeners saw their replicated writes and did not announce them again.
    await sleep(300);
    expect(await c.published('cert.issued', 'shop.example.com')).toBe(1);
  });

  it('serves a renewal in B and C at once: the sqs-listener makes the edge forget its copy', async () => {
    const renewed = await makeCertRecord(['shop.example.com'], 60);
    await c.of(a).set('edge:shop.example.com:latest', JSON.stringify(renewed));
    for (const r of [b, cc]) {
      await until(`the renewal served in ${r.spec.name}`, async () => {
        const got = await served(r.spec.address, https(), 'shop.example.com');
        return got.fingerprint === fingerprint(renewed) || undefined;
      });
    }
  });

  it('makes B and C miss after a purge published in A', async () => {
    origin.set('/p/page.html', { body: 'page\n', headers: { 'cache-control': 'max-age=300' } });
    await c.announcer.upsertTenant('acme', { type: 'http', url: `http://127.0.0.1:${origin.port}` });
    for (const r of regions.regions) await hasKey(r, 'edge:@tenant:acme');
    for (const r of regions.regions) {
      await get(r.spec.address, https(), TENANT_HOST, '/p/page.html');
      // A hit from either tier (small fresh objects are answered from memory).
      expect((await get(r.spec.address, https(), TENANT_HOST, '/p/page.html')).cacheStatus).toMatch(
        /^edge; hit/,
      );
    }
    const generation = await c.announcer.purge({ scope: 'tenant', tenant: 'acme' });
    for (const r of [b, cc]) {
      const reply = await until(`a miss in ${r.spec.name}`, async () => {
        const res = await get(r.spec.address, https(), TENANT_HOST, '/p/page.html');
        return res.cacheStatus.startsWith('edge; fwd=miss') ? res : undefined;
      });
      expect(reply.body).toBe('page\n');
      expect(await c.of(r).hget('edge:@purge:acme', 't')).toBe(String(generation));
    }
  });

  it('ignores a duplicated or older purge event: the generation only moves forward', async () => {
    const before = await c.of(b).hget('edge:@purge:acme', 't');
    const old = makeEvent('cache.purge', 1000, { scope: 'tenant', tenant: 'acme', generation: 1000 });
    await c.bus.publish(old);
    await c.bus.publish(old);
    // A marker after them: once it is applied, the older events have been too.
    await c.announcer.upsertDomain('marker.example.com', 'acme');
    await hasKey(b, 'edge:@domain:marker.example.com');
    expect(await c.of(b).hget('edge:@purge:acme', 't')).toBe(before);
  });

  it('bootstraps a new task with an empty Redis and serves every certificate once it reports ready', async () => {
    const records: [string, CertRecord][] = [];
    for (let i = 0; i < 6; i++) {
      const domain = `boot-${i}.example.com`;
      const record = await makeCertRecord([domain]);
      await c.store.putCert(domain, record);
      records.push([domain, record]);
    }
    // Announced too, so the running regions converge with the new one (checked by the next test).
    for (const [domain, record] of records)
      await c.bus.publish(makeEvent('cert.issued', record.expiry, { domain }));
    // startRegion returns once the sqs-listener's /readyz says 200.
    const d = await regions.startRegion({ name: 'region-d', address: '127.0.0.5' });
    for (const [domain, record] of records) {
      const got = await served(d.spec.address, https(), domain);
      expect(got.fingerprint).toBe(fingerprint(record));
    }
    expect((await served(d.spec.address, https(), 'shop.example.com')).san).toBe('DNS:shop.example.com');
    expect(await c.of(d).get('edge:@tenant:acme')).toContain('"id":"acme"');
    await d.stop();
  });

  it('converges after dropped events: a replacement task bootstraps to the same state as the others', async () => {
    await cc.stop();
    // While C is gone: a domain added and removed, another added, a certificate revoked and one issued.
    await c.announcer.upsertDomain('gone.example.com', 'acme');
    await c.announcer.removeDomain('gone.example.com');
    await c.announcer.upsertDomain('kept.example.com', 'acme');
    await c.announcer.revokeCert('boot-0.example.com');
    const fresh = await makeCertRecord(['late.example.com']);
    await c.of(a).set('edge:late.example.com:latest', JSON.stringify(fresh));
    await hasKey(b, 'edge:late.example.com:latest');
    await until(
      'the revocation in B',
      async () => (await c.of(b).exists('edge:boot-0.example.com:latest')) === 0,
    );
    await until('kept in B', async () => (await c.of(b).exists('edge:@domain:kept.example.com')) === 1);

    cc = await regions.startRegion({ name: 'region-c', address: '127.0.0.4' });
    const [sa, sb, sc] = await Promise.all([c.snapshot(a), c.snapshot(b), c.snapshot(cc)]);
    expect(sc).toEqual(sb);
    expect(sb).toEqual(sa);
    expect(sc['edge:@domain:gone.example.com']).toBeUndefined();
    expect(sc['edge:@versions']).toMatchObject({ 'domain:gone.example.com': '2:del' });
    expect((await served(cc.spec.address, https(), 'late.example.com')).fingerprint).toBe(fingerprint(fresh));
  });
});

import { beforeAll, describe, expect, it } from 'vitest';
import { makeEvent } from '../../lib/core/events/codec.ts';
import { startRedisServer } from '../../lib/local/redis-server.ts';
import { type LocalRegion, LocalRegions } from '../../lib/local/regions.ts';
import { makeCertRecord } from '../../lib/local/self-signed-cert.ts';
import { TestOrigin } from '../harness/origin.ts';
import { TestBed } from '../harness/testbed.ts';
import { until } from '../replication/bus-contract.ts';
import { fingerprint, get, RegionClients, served } from './helpers.ts';

const bed = new TestBed('recovery');
let regions: LocalRegions;
let c: RegionClients;
let origin: TestOrigin;
let a: LocalRegion;
const HOST = 'www.recover.test';
let certFingerprint = '';

const https = () => regions.ports.https;

beforeAll(async () => {
  origin = new TestOrigin();
  await origin.start();
  bed.onStop(() => origin.stop());
  regions = await LocalRegions.start({ dir: bed.dir });
  bed.onStop(() => regions.stop());
  a = regions.regions[0] as LocalRegion;
  c = await RegionClients.open(regions);
  bed.onStop(() => c.close());
  origin.set('/page.txt', { body: 'page\n', headers: { 'cache-control': 'max-age=300' } });
  await c.announcer.upsertTenant('acme', { type: 'http', url: `http://127.0.0.1:${origin.port}` });
  await c.announcer.upsertDomain(HOST, 'acme');
  const record = await makeCertRecord([HOST]);
  await c.store.putCert(HOST, record);
  await c.bus.publish(makeEvent('cert.issued', record.expiry, { domain: HOST }));
  certFingerprint = fingerprint(record);
  for (const r of regions.regions) {
    await until(
      `${HOST} in ${r.spec.name}`,
      async () => (await c.of(r).exists(`edge:@domain:${HOST}`, `edge:${HOST}:latest`)) === 2,
    );
  }
}, 120_000);

describe('recovery without a human', () => {
  it("a region's Redis killed -9 and restarted empty serves the tenant again within 10 s", async () => {
    expect((await get(a.spec.address, https(), HOST, '/page.txt')).status).toBe(200);
    const t0 = Date.now();
    await a.redis.kill();
    const restarted = bed.track(
      await startRedisServer({ port: regions.ports.redis, host: a.spec.address, dir: a.dir }),
    );
    await until(
      'the tenant served again from a bootstrapped Redis',
      async () => {
        const [records, res] = await Promise.all([
          c
            .of(a)
            .exists('edge:@tenant:acme', `edge:@domain:${HOST}`)
            .catch(() => 0),
          get(a.spec.address, https(), HOST, '/page.txt').catch(() => ({ status: 0 })),
        ]);
        return records === 2 && res.status === 200;
      },
      10_000,
    );
    const ms = Date.now() - t0;
    console.info(
      `[figure] region redis kill -9 and restart → tenant served from a bootstrapped redis: ${ms} ms`,
    );
    expect(ms).toBeLessThan(10_000);
    expect(restarted.running).toBe(true);
    await until(
      'its certificate served again',
      async () => (await served(a.spec.address, https(), HOST)).fingerprint === certFingerprint || undefined,
    );
  });

  it('after the bus Redis restarts, a purge reaches every region within 5 s', async () => {
    const t0 = Date.now();
    await regions.busRedis.kill();
    bed.track(await startRedisServer({ port: regions.busRedisPort, dir: regions.opts.dir }));
    // Resolves only once some task reads the stream again (the publish is confirmed).
    const generation = await c.announcer.purge({ scope: 'tenant', tenant: 'acme' });
    for (const r of regions.regions) {
      await until(
        `the purge in ${r.spec.name}`,
        async () => (await c.of(r).hget('edge:@purge:acme', 't')) === String(generation),
        5000,
      );
    }
    const ms = Date.now() - t0;
    console.info(`[figure] bus redis kill -9 and restart → purge in every region: ${ms} ms`);
    expect(ms).toBeLessThan(5000);
  });
});

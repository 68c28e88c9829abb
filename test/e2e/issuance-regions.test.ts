import type { X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';
import { beforeAll, describe, expect, it } from 'vitest';
import { type LocalRegion, LocalRegions } from '../../lib/local/regions.ts';
import { TestOrigin } from '../harness/origin.ts';
import { TestBed } from '../harness/testbed.ts';
import { until } from '../replication/bus-contract.ts';
import { RegionClients } from './helpers.ts';

// Issue 10, item 7: every local region runs its issuer against one shared Pebble; concurrent
// first handshakes for one new domain in all three regions make exactly one ACME order, and every
// region ends up serving that one certificate.
const bed = new TestBed('issuance-regions');
let regions: LocalRegions;
let c: RegionClients;
const DOMAIN = 'new-shop.example.com';

/** One handshake: the served certificate, whether it chains to the CA given, how long it took. */
function handshake(
  r: LocalRegion,
  ca: string,
): Promise<{ fingerprint: string; san: string; authorized: boolean; ms: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: r.spec.address,
      port: regions.ports.https,
      servername: DOMAIN,
      ca,
      rejectUnauthorized: false,
    });
    socket.once('secureConnect', () => {
      const cert = socket.getPeerX509Certificate() as X509Certificate | undefined;
      socket.destroy();
      resolve({
        fingerprint: cert?.fingerprint256 ?? '',
        san: cert?.subjectAltName ?? '',
        authorized: socket.authorized,
        ms: Date.now() - started,
      });
    });
    socket.once('error', reject);
  });
}

beforeAll(async () => {
  const origin = new TestOrigin();
  await origin.start();
  bed.onStop(() => origin.stop());
  regions = await LocalRegions.start({ dir: bed.dir, issuance: true });
  bed.onStop(() => regions.stop());
  c = await RegionClients.open(regions);
  bed.onStop(() => c.close());
  await c.announcer.upsertTenant('acme', { type: 'http', url: `http://127.0.0.1:${origin.port}` });
  await c.announcer.upsertDomain(DOMAIN, 'acme');
  for (const r of regions.regions) {
    await until(
      `${DOMAIN} allowed in ${r.spec.name}`,
      async () => (await c.of(r).exists(`edge:@domain:${DOMAIN}`)) === 1,
    );
  }
}, 180_000);

describe('local regions with issuance', () => {
  it('concurrent first handshakes for one new domain in all three regions make exactly one ACME order', async () => {
    const root = await regions.pebble?.root();
    if (!root) throw new Error('no Pebble');
    const first = await Promise.all(
      regions.regions.flatMap((r) => Array.from({ length: 4 }, () => handshake(r, root))),
    );
    expect(first).toHaveLength(12);
    // Every region ends up serving the one certificate, chaining to Pebble's root.
    const served = await Promise.all(
      regions.regions.map((r) =>
        until(
          `the issued certificate in ${r.spec.name}`,
          async () => {
            const h = await handshake(r, root);
            return h.authorized ? h : undefined;
          },
          30_000,
        ),
      ),
    );
    expect(new Set(served.map((h) => h.fingerprint)).size).toBe(1);
    expect(served[0]?.san).toBe(`DNS:${DOMAIN}`);
    const orders = regions.regions.map((r) => r.issuer?.issuer.orders ?? 0);
    console.info(`[figure] orders per region for ${DOMAIN}: ${orders.join(', ')}`);
    expect(orders.reduce((a, b) => a + b, 0)).toBe(1);
    expect(await c.published('cert.issued', DOMAIN)).toBe(1);
  });
});

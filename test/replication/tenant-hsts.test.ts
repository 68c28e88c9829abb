import { beforeAll, describe, expect, it } from 'vitest';
import { TableCertificateReader } from '../../lib/control/certificates.ts';
import { ControlPlane } from '../../lib/control/control-plane.ts';
import { ValidationError } from '../../lib/control/errors.ts';
import { decodeEvent, encodeEvent } from '../../lib/core/events/codec.ts';
import type { EdgeEvent } from '../../lib/core/events/schema.ts';
import { tenantRecordSchema } from '../../lib/core/redis-format.ts';
import { FakeResolver } from '../control/fake-resolver.ts';
import { TestBed } from '../harness/testbed.ts';
import { ReplicaFixture } from './replica-fixture.ts';

// HSTS per tenant through the control plane: table, tenant.upserted, a region's sqs-listener
// (events and bootstrap) and the edge's tenant record, which the Lua reads.
const bed = new TestBed('tenant-hsts');
let fx: ReplicaFixture;
let cp: ControlPlane;
const wire: EdgeEvent[] = [];
const ORIGIN = { type: 'http', url: 'http://127.0.0.1:8080' } as const;

beforeAll(async () => {
  fx = await ReplicaFixture.start(bed);
  cp = new ControlPlane({
    store: fx.store,
    // As the bus carries it: encoded by the writer, decoded by a region.
    bus: { publish: async (e) => void wire.push(decodeEvent(encodeEvent(e))) },
    resolver: new FakeResolver({}),
    certificates: new TableCertificateReader(fx.dynamo, 'replica-test'),
  });
});

/** Applies the events published so far to a region (prefix) and returns the tenant's record. */
async function viaEvents(prefix: string, id: string): Promise<unknown> {
  const { applier } = fx.replica(prefix);
  for (const e of wire.splice(0)) await applier.apply(e);
  return (await fx.snapshot(prefix))[`:@tenant:${id}`];
}

async function viaBootstrap(prefix: string, id: string): Promise<unknown> {
  await fx.bootstrap(fx.replica(prefix).replica);
  return (await fx.snapshot(prefix))[`:@tenant:${id}`];
}

describe('tenant HSTS from the control plane to a region', () => {
  it('is off by default: no hsts in the event, the table or the edge record', async () => {
    const r = await cp.tenants.add('plain', ORIGIN);
    expect(r.tenant).toEqual({ id: 'plain', origin: ORIGIN, version: 1 });
    expect(wire.at(-1)?.payload).toEqual({ id: 'plain', origin: ORIGIN });
    expect(await viaEvents('ev', 'plain')).toEqual({ id: 'plain', origin: ORIGIN, version: 1 });
    expect(await viaBootstrap('bs0', 'plain')).toEqual({ id: 'plain', origin: ORIGIN, version: 1 });
  });

  it('reaches the Redis tenant record through events and through a bootstrap', async () => {
    const hsts = { maxAgeSeconds: 31536000, includeSubDomains: true, preload: true };
    const r = await cp.tenants.add('secure', ORIGIN, { hsts });
    expect(r.tenant).toEqual({ id: 'secure', origin: ORIGIN, hsts, version: 1 });
    expect(await fx.store.getTenant('secure')).toMatchObject({ hsts, version: 1 });
    expect(wire.at(-1)).toMatchObject({ type: 'tenant.upserted', payload: { id: 'secure', hsts } });
    const expected = { id: 'secure', origin: ORIGIN, hsts, version: 1 };
    const fromEvents = await viaEvents('ev', 'secure');
    expect(fromEvents).toEqual(expected);
    // What the edge's schema (and so the Lua) accepts.
    expect(tenantRecordSchema.parse(fromEvents).hsts).toEqual(hsts);
    expect(await viaBootstrap('bs1', 'secure')).toEqual(expected);
    expect((await cp.tenants.show('secure')).hsts).toEqual(hsts);
  });

  it('defaults includeSubDomains and preload to false', async () => {
    await cp.tenants.add('short', ORIGIN, { hsts: { maxAgeSeconds: 300 } });
    const hsts = { maxAgeSeconds: 300, includeSubDomains: false, preload: false };
    expect(await viaEvents('ev', 'short')).toEqual({ id: 'short', origin: ORIGIN, hsts, version: 1 });
  });

  it('a replacement without hsts turns it off everywhere', async () => {
    await cp.tenants.add('secure', ORIGIN);
    expect(await viaEvents('ev', 'secure')).toEqual({ id: 'secure', origin: ORIGIN, version: 2 });
    expect(await viaBootstrap('bs2', 'secure')).toEqual({ id: 'secure', origin: ORIGIN, version: 2 });
    expect((await cp.tenants.show('secure')).hsts).toBeUndefined();
  });

  it('refuses what the edge would not send, before anything is written', async () => {
    const bad = [
      [{ maxAgeSeconds: 300, includeSubDomains: true, preload: true }, /preload needs includeSubDomains/],
      [{ maxAgeSeconds: 31536000, preload: true }, /preload needs includeSubDomains/],
      [{ maxAgeSeconds: 0 }, /invalid hsts maxAgeSeconds 0/],
      [{ maxAgeSeconds: 63072001 }, /invalid hsts maxAgeSeconds/],
      [{ maxAgeSeconds: 1.5 }, /invalid hsts maxAgeSeconds/],
    ] as const;
    for (const [hsts, message] of bad) {
      await expect(cp.tenants.add('refused', ORIGIN, { hsts })).rejects.toThrow(ValidationError);
      await expect(cp.tenants.add('refused', ORIGIN, { hsts })).rejects.toThrow(message);
    }
    expect(await fx.store.getTenant('refused')).toBeUndefined();
    expect(wire.filter((e) => e.type === 'tenant.upserted' && e.payload.id === 'refused')).toEqual([]);
  });

  it('readers drop a field they do not know, as a region that predates hsts drops it', () => {
    const body = encodeEvent({
      id: 'e1',
      type: 'tenant.upserted',
      version: 3,
      time: new Date().toISOString(),
      payload: {
        id: 'secure',
        origin: ORIGIN,
        hsts: { maxAgeSeconds: 60, includeSubDomains: false, preload: false },
      },
    });
    const old = JSON.parse(body);
    old.payload.futureSetting = { x: 1 };
    expect(decodeEvent(JSON.stringify(old)).payload).not.toHaveProperty('futureSetting');
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TableCertificateReader } from '../../lib/control/certificates.ts';
import { ControlPlane } from '../../lib/control/control-plane.ts';
import { ConflictError, NotFoundError, PublishError } from '../../lib/control/errors.ts';
import { RedisStreamsBus } from '../../lib/core/bus/redis/streams-bus.ts';
import { makeCertRecord } from '../../lib/local/self-signed-cert.ts';
import { TestBed } from '../harness/testbed.ts';
import { FakeResolver } from './fake-resolver.ts';
import { controlStack } from './stack.ts';

const bed = new TestBed('control-plane');
const STREAM = 'control:events';
const stack = controlStack(bed, { streams: [STREAM] });
const EDGE = { cname: 'edge.platform.example', addresses: ['203.0.113.10'] };
const S3 = {
  type: 's3-website',
  endpoint: 'sites.s3-website.eu-west-1.amazonaws.com',
  prefix: 'acme/',
} as const;

const resolver = new FakeResolver({
  'www.acme-shop.com': { cname: 'edge.platform.example' },
  'acme-shop.com': { a: ['203.0.113.10'] },
  'shop.globex.com': { a: ['203.0.113.10'] },
  'www.elsewhere.com': { a: ['198.51.100.7'] },
  'elsewhere.com': {},
});

let bus: RedisStreamsBus;
let cp: ControlPlane;

beforeAll(() => {
  bus = new RedisStreamsBus({ redis: { port: stack.redisPort }, stream: STREAM, group: 'control-test' });
  cp = new ControlPlane({
    store: stack.store,
    bus,
    resolver,
    certificates: new TableCertificateReader(stack.client, stack.tableName),
    edge: EDGE,
  });
});
afterAll(() => bus.close({ keepSubscription: true }));

/** The events appended since the last call. */
let seen = 0;
async function newEvents() {
  const all = await stack.events(STREAM);
  const out = all.slice(seen);
  seen = all.length;
  return out;
}

describe('ControlPlane on dynalite and Redis Streams', () => {
  it('adds a tenant: table first, then tenant.upserted with the same version', async () => {
    const r = await cp.tenants.add('acme', S3);
    expect(r).toEqual({ tenant: { id: 'acme', origin: S3, version: 1 }, created: true });
    expect(await stack.store.getTenant('acme')).toMatchObject({
      kind: 'tenant',
      id: 'acme',
      origin: S3,
      version: 1,
    });
    const events = await newEvents();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: 'tenant.upserted',
      version: 1,
      payload: { id: 'acme', origin: S3 },
    });
  });

  it('adding it again replaces the origin with a newer version', async () => {
    const origin = { type: 'http', url: 'https://origin.acme.example/site' } as const;
    const r = await cp.tenants.add('acme', origin);
    expect(r.created).toBe(false);
    expect(r.tenant.version).toBe(2);
    expect((await stack.store.getTenant('acme'))?.origin).toEqual(origin);
    await cp.tenants.add('acme', S3);
    expect((await newEvents()).map((e) => [e.type, e.version])).toEqual([
      ['tenant.upserted', 2],
      ['tenant.upserted', 3],
    ]);
  });

  it('adds a domain as pending_verification with the exact records to create; nothing reaches the edge', async () => {
    const r = await cp.domains.add('WWW.acme-shop.com', 'acme');
    const token = (await stack.store.getDomain('www.acme-shop.com'))?.verifyToken as string;
    expect(token).toMatch(/^edge-verify=[\w-]{24}$/);
    expect(r).toEqual({
      domain: { domain: 'www.acme-shop.com', tenant: 'acme', version: 1, status: 'pending_verification' },
      created: true,
      dns: { domain: 'www.acme-shop.com', via: 'cname', chain: ['edge.platform.example'], addresses: [] },
      records: [
        {
          purpose: 'ownership',
          type: 'TXT',
          name: '_edge-verify.www.acme-shop.com',
          value: token,
          satisfied: false,
          note: `or serve the value at http://www.acme-shop.com/.well-known/edge-verify.txt; keep it: it is re-checked`,
        },
        {
          purpose: 'routing',
          type: 'CNAME',
          name: 'www.acme-shop.com',
          value: 'edge.platform.example',
          satisfied: true,
        },
      ],
    });
    // Only domain.status: the edge acts on domain.upserted, sent once the owner proved control.
    expect(await newEvents()).toMatchObject([
      {
        type: 'domain.status',
        version: 1,
        payload: { domain: 'www.acme-shop.com', tenant: 'acme', status: 'pending_verification' },
      },
    ]);
  });

  it('verifies by the TXT record: verified, then domain.upserted with the same version', async () => {
    const token = (await stack.store.getDomain('www.acme-shop.com'))?.verifyToken as string;
    resolver.set('_edge-verify.www.acme-shop.com', { txt: [token] });
    const entry = await cp.domains.verify('www.acme-shop.com');
    expect(entry).toMatchObject({ status: 'verified', version: 2, verifiedAt: expect.any(Number) });
    expect(await newEvents()).toMatchObject([
      {
        type: 'domain.status',
        version: 2,
        payload: { status: 'verified', previous: 'pending_verification' },
      },
      { type: 'domain.upserted', version: 2, payload: { domain: 'www.acme-shop.com', tenant: 'acme' } },
    ]);
  });

  it('verifies by the HTTP token at the current host, apex records by address', async () => {
    const fetched: string[] = [];
    const byHttp = new ControlPlane({
      store: stack.store,
      bus,
      resolver,
      certificates: new TableCertificateReader(stack.client, stack.tableName),
      edge: EDGE,
      fetchToken: async (url) => {
        fetched.push(url);
        return (await stack.store.getDomain('acme-shop.com'))?.verifyToken;
      },
    });
    const r = await byHttp.domains.add('acme-shop.com', 'acme');
    expect(fetched).toEqual(['http://acme-shop.com/.well-known/edge-verify.txt']);
    expect(r.domain.status).toBe('verified');
    expect(r.dns).toMatchObject({ via: 'address', addresses: ['203.0.113.10'] });
    expect(r.records.filter((x) => x.purpose === 'routing')).toEqual([
      { purpose: 'routing', type: 'A', name: 'acme-shop.com', value: '203.0.113.10', satisfied: true },
      {
        purpose: 'routing',
        type: 'ALIAS',
        name: 'acme-shop.com',
        value: 'edge.platform.example',
        satisfied: true,
        note: 'an apex cannot have a CNAME: an ALIAS/ANAME/flattened CNAME where the DNS provider has one, else the A/AAAA records',
      },
    ]);
    expect((await newEvents()).map((e) => [e.type, e.version])).toEqual([
      ['domain.status', 1],
      ['domain.status', 2],
      ['domain.upserted', 2],
    ]);
  });

  it('accepts a domain that does not point at the edge yet, saying so', async () => {
    await cp.tenants.add('globex', { type: 'http', url: 'http://origin.globex.example' });
    await newEvents();
    const r = await cp.domains.add('www.elsewhere.com', 'globex');
    expect(r.dns).toEqual({
      via: 'none',
      reason:
        'www.elsewhere.com does not point at the edge: it resolves to A 198.51.100.7; expected a CNAME to edge.platform.example or A/AAAA records among 203.0.113.10',
    });
    expect(r.domain.status).toBe('pending_verification');
    expect(r.records.find((x) => x.purpose === 'routing')).toMatchObject({ type: 'CNAME', satisfied: false });
    expect((await newEvents()).map((e) => e.type)).toEqual(['domain.status']);
  });

  it('an operator may vouch for the owner (and skip the DNS check)', async () => {
    const r = await cp.domains.add('shop.globex.com', 'globex', { skipDnsCheck: true, preverified: true });
    expect(r.dns).toBe('skipped');
    expect(r.domain.status).toBe('verified');
    expect((await newEvents()).map((e) => e.type)).toEqual(['domain.status', 'domain.upserted']);
  });

  it('reports a CAA record that forbids the CA in use, with the record to add', async () => {
    resolver.set('elsewhere.com', { caa: [{ critical: 0, issue: 'pki.goog' }] });
    const d = await cp.domains.show('www.elsewhere.com');
    expect(d.caa).toEqual({
      name: 'elsewhere.com',
      allows: ['pki.goog'],
      add: { type: 'CAA', name: 'elsewhere.com', value: '0 issue "letsencrypt.org"' },
    });
    expect(d.records.at(-1)).toEqual({
      purpose: 'caa',
      type: 'CAA',
      name: 'elsewhere.com',
      value: '0 issue "letsencrypt.org"',
      satisfied: false,
    });
  });

  it('refuses an unknown tenant and a domain owned by another tenant', async () => {
    await expect(cp.domains.add('other.globex.com', 'initech')).rejects.toThrow(
      new NotFoundError('tenant "initech" does not exist'),
    );
    await expect(cp.domains.add('www.acme-shop.com', 'globex')).rejects.toThrow(
      new ConflictError('domain www.acme-shop.com belongs to tenant "acme": remove it first'),
    );
    expect(await newEvents()).toEqual([]);
  });

  it('lists tenants and domains', async () => {
    expect(await cp.tenants.list()).toEqual([
      { id: 'acme', origin: S3, version: 3, domains: 2 },
      { id: 'globex', origin: { type: 'http', url: 'http://origin.globex.example' }, version: 1, domains: 2 },
    ]);
    expect((await cp.domains.list({ tenant: 'acme' })).map((d) => d.domain)).toEqual([
      'acme-shop.com',
      'www.acme-shop.com',
    ]);
    expect((await cp.domains.list()).map((d) => [d.domain, d.status])).toEqual([
      ['acme-shop.com', 'verified'],
      ['shop.globex.com', 'verified'],
      ['www.acme-shop.com', 'verified'],
      ['www.elsewhere.com', 'pending_verification'],
    ]);
    await expect(cp.domains.list({ tenant: 'initech' })).rejects.toThrow(NotFoundError);
  });

  it('purges with strictly increasing generations, recorded before they are published', async () => {
    const a = await cp.purge('acme', { scope: 'host', host: 'www.acme-shop.com' });
    const b = await cp.purge('acme', { scope: 'host', host: 'www.acme-shop.com' });
    const c = await cp.purge('acme', { scope: 'url', url: 'https://www.acme-shop.com/index.html' });
    const d = await cp.purge('acme', { scope: 'prefix', prefix: '/blog/' });
    const t = await cp.purge('acme', { scope: 'tenant' });
    expect(b.generation).toBeGreaterThan(a.generation);
    expect(a).toMatchObject({
      tenant: 'acme',
      scope: 'host',
      target: 'www.acme-shop.com',
      field: 'h:www.acme-shop.com',
    });
    expect(c.field).toBe('u:www.acme-shop.com/index.html');
    expect(t).toEqual({
      tenant: 'acme',
      scope: 'tenant',
      target: undefined,
      field: 't',
      generation: t.generation,
    });
    expect(await stack.store.getPurges('acme')).toEqual({
      'h:www.acme-shop.com': b.generation,
      'u:www.acme-shop.com/index.html': c.generation,
      'p:/blog/': d.generation,
      t: t.generation,
    });
    const events = await newEvents();
    expect(events.map((e) => e.type)).toEqual(Array(5).fill('cache.purge'));
    expect(events[0]).toMatchObject({
      version: a.generation,
      payload: { scope: 'host', tenant: 'acme', host: 'www.acme-shop.com', generation: a.generation },
    });
    await expect(cp.purge('initech', { scope: 'tenant' })).rejects.toThrow('tenant "initech" does not exist');
  });

  it('gives a newer generation than the table holds even when clocks agree', async () => {
    // Two control planes (two operators) whose clocks read the same millisecond.
    const frozen = (await stack.store.getPurges('acme')).t ?? 0;
    const other = new ControlPlane({
      store: stack.store,
      bus,
      resolver,
      certificates: new TableCertificateReader(stack.client, stack.tableName),
      now: () => frozen,
    });
    const r = await other.purge('acme', { scope: 'tenant' });
    expect(r.generation).toBe(frozen + 1);
    expect((await stack.store.getPurges('acme')).t).toBe(frozen + 1);
    expect((await newEvents()).map((e) => e.version)).toEqual([frozen + 1]);
  });

  it('shows a domain: registry entry, certificate state from the table, purges, never the key', async () => {
    const none = await cp.domains.show('acme-shop.com');
    expect(none.certificate).toEqual({ domain: 'acme-shop.com', state: 'none' });
    const record = await makeCertRecord(['www.acme-shop.com'], 90);
    await stack.store.putCert('www.acme-shop.com', record);
    await stack.issuance.issued('www.acme-shop.com', record.expiry, 'test-ca');
    const shown = await cp.domains.show('www.acme-shop.com');
    const purges = await stack.store.getPurges('acme');
    // Showing brings the status up to date: the certificate is there, so the domain is active.
    expect(shown).toMatchObject({
      domain: 'www.acme-shop.com',
      tenant: 'acme',
      version: 3,
      status: 'active',
      certificate: {
        state: 'issued',
        expiry: record.expiry,
        issuer: expect.stringContaining('CN=www.acme-shop.com'),
        subjectAltNames: ['www.acme-shop.com'],
      },
      purges: {
        tenant: purges.t,
        host: purges['h:www.acme-shop.com'],
        prefixes: 1,
        urls: 1,
        latest: purges.t,
      },
    });
    expect(JSON.stringify(shown)).not.toContain('PRIVATE KEY');
    await stack.issuance.failed('acme-shop.com', 'urn:ietf:params:acme:error:dns', Date.now() + 60_000, 1);
    expect((await cp.domains.show('acme-shop.com')).certificate).toMatchObject({
      state: 'failed',
      reason: 'urn:ietf:params:acme:error:dns',
    });
    await expect(cp.domains.show('nothere.example.com')).rejects.toThrow(
      new NotFoundError('domain nothere.example.com is not registered'),
    );
  });

  it('shows a tenant with its domains and purge generations', async () => {
    const t = await cp.tenants.show('acme');
    expect(t.domains.map((d) => d.domain)).toEqual(['acme-shop.com', 'www.acme-shop.com']);
    expect(Object.keys(t.purges).sort()).toEqual([
      'h:www.acme-shop.com',
      'p:/blog/',
      't',
      'u:www.acme-shop.com/index.html',
    ]);
  });

  it('removes a domain', async () => {
    await newEvents();
    expect(await cp.domains.remove('www.elsewhere.com')).toEqual({
      domain: 'www.elsewhere.com',
      tenant: 'globex',
      version: 2,
    });
    expect(await stack.store.getDomain('www.elsewhere.com')).toMatchObject({ deleted: true, version: 2 });
    expect(await newEvents()).toMatchObject([
      { type: 'domain.removed', version: 2, payload: { domain: 'www.elsewhere.com' } },
    ]);
    await expect(cp.domains.remove('www.elsewhere.com')).rejects.toThrow(NotFoundError);
  });

  it('removing a tenant removes and announces its domains first', async () => {
    const r = await cp.tenants.remove('acme');
    expect(r).toEqual({ id: 'acme', version: 4, domains: ['acme-shop.com', 'www.acme-shop.com'] });
    expect(await stack.store.getTenant('acme')).toMatchObject({ deleted: true, version: 4 });
    expect(await stack.store.getDomain('www.acme-shop.com')).toMatchObject({ deleted: true });
    expect((await newEvents()).map((e) => [e.type, e.version])).toEqual([
      ['domain.removed', 4],
      ['domain.removed', 4],
      ['tenant.removed', 4],
    ]);
    expect((await cp.tenants.list()).map((t) => t.id)).toEqual(['globex']);
    await expect(cp.tenants.remove('acme')).rejects.toThrow('tenant "acme" does not exist');
  });

  it('says so when the table was written but the event could not be published', async () => {
    const broken = new ControlPlane({
      store: stack.store,
      bus: { publish: async () => Promise.reject(new Error('connection refused')) },
      resolver,
      certificates: new TableCertificateReader(stack.client, stack.tableName),
    });
    const err = await broken.tenants
      .add('hooli', { type: 'http', url: 'http://origin.hooli.example' })
      .catch((e) => e);
    expect(err).toBeInstanceOf(PublishError);
    expect(err.message).toBe(
      'tenant.upserted (version 1) is in the table but was not published: connection refused; repeat the command to publish it',
    );
    expect(await stack.store.getTenant('hooli')).toMatchObject({ version: 1 });
  });

  it('the scheduled re-check marks a domain that lost both DNS and token moved_away, and keeps serving it', async () => {
    resolver.set('shop.globex.com', { a: ['198.51.100.9'] });
    const entry = await cp.domains.refresh('shop.globex.com', { recheck: true });
    expect(entry).toMatchObject({ status: 'moved_away', verifiedAt: expect.any(Number) });
    expect(entry.reason).toMatch(/does not point at the edge.*and the ownership token is gone$/);
    const events = await newEvents();
    expect(events.map((e) => e.type)).toEqual(['domain.status']);
    expect(await stack.store.getDomain('shop.globex.com')).toMatchObject({
      status: 'moved_away',
      tenant: 'globex',
      verifiedAt: expect.any(Number),
    });
    // Pointing back at the edge is continuing proof again.
    resolver.set('shop.globex.com', { a: ['203.0.113.10'] });
    expect((await cp.domains.refresh('shop.globex.com', { recheck: true })).status).toBe('verified');
  });

  it('a record from before statuses reads as verified', async () => {
    await stack.store.putDomain('legacy.acme-shop.com', 'acme', 1);
    expect(await cp.domains.verify('legacy.acme-shop.com')).toMatchObject({ status: 'verified' });
  });
});

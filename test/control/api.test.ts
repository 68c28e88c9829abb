import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiServer, startApiServer } from '../../lib/control/api/server.ts';
import { TableCertificateReader } from '../../lib/control/certificates.ts';
import { ControlPlane } from '../../lib/control/control-plane.ts';
import { RedisStreamsBus } from '../../lib/core/bus/redis/streams-bus.ts';
import { createLogger } from '../../lib/sidecars/runtime/logger.ts';
import { TestBed } from '../harness/testbed.ts';
import { FakeResolver } from './fake-resolver.ts';
import { controlStack } from './stack.ts';

const bed = new TestBed('control-api');
const STREAM = 'api:events';
const stack = controlStack(bed, { tableName: 'edge-api', streams: [STREAM] });
const KEY = { accessKeyId: 'AKIDLOCALTEST', secretAccessKey: 'local-secret-for-tests' };
const CLIENT = fileURLToPath(new URL('../../examples/python/edge_api.py', import.meta.url));
const run = promisify(execFile);

const resolver = new FakeResolver({ 'www.acme-shop.com': { cname: 'edge.platform.example' } });
let bus: RedisStreamsBus;
let api: ApiServer;

beforeAll(async () => {
  bus = new RedisStreamsBus({ redis: { port: stack.redisPort }, stream: STREAM, group: 'api-test' });
  const control = new ControlPlane({
    store: stack.store,
    bus,
    resolver,
    certificates: new TableCertificateReader(stack.client, stack.tableName),
    edge: { cname: 'edge.platform.example' },
    fetchToken: async () => undefined,
  });
  api = await startApiServer({
    control,
    credentials: [KEY],
    region: 'eu-west-1',
    port: 0,
    recheckSeconds: 0,
    log: createLogger({ service: 'control-api', region: 'test', level: 'silent' }),
  });
});
afterAll(async () => {
  await api?.close();
  await bus?.close({ keepSubscription: true });
});

/** The documented Python client (botocore's SigV4Auth), as a backend would run it. */
async function python(method: string, path: string, body?: unknown, key = KEY) {
  const args = [CLIENT, method, path, ...(body === undefined ? [] : [JSON.stringify(body)])];
  const out = await run('python3', args, {
    env: {
      PATH: process.env.PATH,
      EDGE_API_URL: api.url,
      EDGE_API_REGION: 'eu-west-1',
      AWS_ACCESS_KEY_ID: key.accessKeyId,
      AWS_SECRET_ACCESS_KEY: key.secretAccessKey,
    },
  }).then(
    (r) => ({ code: 0, json: JSON.parse(r.stdout) }),
    (e) => ({ code: e.code as number, json: JSON.parse(e.stdout || 'null') }),
  );
  return out;
}

describe('control API through the Python client (botocore SigV4)', () => {
  it('creates a tenant and a domain, returns the DNS records, verifies by TXT', async () => {
    const t = await python('POST', '/tenants', {
      id: 'acme',
      origin: { type: 'http', url: 'http://origin.acme.example' },
    });
    expect(t).toMatchObject({ code: 0, json: { created: true, tenant: { id: 'acme', version: 1 } } });

    const d = await python('POST', '/domains', { domain: 'www.acme-shop.com', tenant: 'acme' });
    expect(d.code).toBe(0);
    expect(d.json.domain).toMatchObject({ domain: 'www.acme-shop.com', status: 'pending_verification' });
    const txt = d.json.records.find((r: { purpose: string }) => r.purpose === 'ownership');
    expect(txt).toMatchObject({ type: 'TXT', name: '_edge-verify.www.acme-shop.com', satisfied: false });

    resolver.set('_edge-verify.www.acme-shop.com', { txt: [txt.value] });
    const v = await python('POST', '/domains/www.acme-shop.com/verify');
    expect(v.json).toMatchObject({ status: 'verified', verifiedAt: expect.any(Number) });
    const shown = await python('GET', '/domains/www.acme-shop.com');
    expect(shown.json).toMatchObject({ status: 'verified', certificate: { state: 'none' } });
    expect((await stack.events(STREAM)).map((e) => e.type)).toEqual([
      'tenant.upserted',
      'domain.status',
      'domain.status',
      'domain.upserted',
    ]);
  });

  it('refuses a domain claimed by another tenant, and a public suffix', async () => {
    await python('POST', '/tenants', {
      id: 'globex',
      origin: { type: 'http', url: 'http://o.globex.example' },
    });
    const r = await python('POST', '/domains', { domain: 'www.acme-shop.com', tenant: 'globex' });
    expect(r).toEqual({
      code: 1,
      json: {
        error: {
          kind: 'conflict',
          message: 'domain www.acme-shop.com belongs to tenant "acme": remove it first',
        },
      },
    });
    const suffix = await python('POST', '/domains', { domain: 'github.io', tenant: 'globex' });
    expect(suffix.json.error.kind).toBe('usage');
  });

  it("takes a tenant's HSTS, off by default, and refuses what the edge would not send", async () => {
    const hsts = { maxAgeSeconds: 63072000, includeSubDomains: true, preload: true };
    const origin = { type: 'http', url: 'http://o.hsts.example' };
    const t = await python('POST', '/tenants', { id: 'hsts', origin, hsts });
    expect(t.json).toEqual({ created: true, tenant: { id: 'hsts', origin, hsts, version: 1 } });
    expect((await stack.events(STREAM)).at(-1)).toMatchObject({ type: 'tenant.upserted', payload: { hsts } });
    expect((await python('GET', '/tenants/hsts')).json).toMatchObject({ hsts });
    const bad = await python('POST', '/tenants', {
      id: 'hsts',
      origin,
      hsts: { maxAgeSeconds: 86400, preload: true },
    });
    expect(bad.json.error).toMatchObject({
      kind: 'usage',
      message: expect.stringMatching(/preload needs includeSubDomains/),
    });
    const off = await python('POST', '/tenants', { id: 'hsts', origin });
    expect(off.json.tenant).toEqual({ id: 'hsts', origin, version: 2 });
  });

  it('takes a wildcard domain through its schema; the control plane asks for delegated DNS-01', async () => {
    const wild = await python('POST', '/domains', { domain: '*.acme-shop.com', tenant: 'acme' });
    expect(wild.json.error).toMatchObject({
      kind: 'usage',
      message: expect.stringMatching(/^a wildcard \(\*\.acme-shop\.com\) is issued only by delegated DNS-01/),
    });
    const suffix = await python('POST', '/domains', { domain: '*.co.uk', tenant: 'acme' });
    expect(suffix.json.error).toMatchObject({
      kind: 'usage',
      message: expect.stringMatching(/co\.uk is a public suffix/),
    });
    const shown = await python('GET', '/domains/*.acme-shop.com');
    expect(shown.json.error).toEqual({
      kind: 'not_found',
      message: 'domain *.acme-shop.com is not registered',
    });
  });

  it('purges', async () => {
    const r = await python('POST', '/purges', { tenant: 'acme', scope: 'prefix', prefix: '/blog/' });
    expect(r.json).toMatchObject({ tenant: 'acme', scope: 'prefix', field: 'p:/blog/' });
  });

  it('refuses a wrong secret and an unsigned request', async () => {
    const bad = await python('GET', '/tenants', undefined, { ...KEY, secretAccessKey: 'wrong' });
    expect(bad.json).toEqual({ error: { kind: 'unauthorized', message: 'signature does not match' } });
    const unsigned = await fetch(`${api.url}/tenants`);
    expect(unsigned.status).toBe(403);
  });

  it('serves its OpenAPI 3.1 document', async () => {
    const doc = (await (await fetch(`${api.url}/openapi.json`)).json()) as {
      openapi: string;
      paths: Record<string, unknown>;
      components: { schemas: Record<string, unknown> };
    };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/domains',
      '/domains/{domain}',
      '/domains/{domain}/verify',
      '/purges',
      '/tenants',
      '/tenants/{id}',
    ]);
    expect(doc.components.schemas).toHaveProperty('DomainAdded');
  });

  it('serves a document that validates against the OpenAPI 3.1 schema', async () => {
    const doc = (await (await fetch(`${api.url}/openapi.json`)).json()) as Record<string, unknown>;
    const validator = new Validator();
    const result = await validator.validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });
});

import { beforeAll, describe, expect, it } from 'vitest';
import { makeCertRecord } from '../../lib/local/self-signed-cert.ts';
import { httpsGet, servedSan } from '../harness/clients.ts';
import { type EdgeStack, errorLogProblems, startEdgeStack } from '../harness/edge-stack.ts';
import { TestBed } from '../harness/testbed.ts';

// A tenant wildcard: `*.shop.test` in the registry and its certificate (what delegated DNS-01
// issues), so every subdomain one label down is the tenant's, with the wildcard certificate.
const bed = new TestBed('tenant-wildcard');
let stack: EdgeStack;

const get = (host: string) => httpsGet({ port: stack.https, host, path: '/page.html' });

beforeAll(async () => {
  stack = await startEdgeStack(bed);
  await stack.seedTenant('acme');
  await stack.seedTenant('globex', `http://127.0.0.1:${stack.origin.port}/sites/globex`);
  await stack.seedDomain('*.shop.test', 'acme');
  await stack.putCert('*.shop.test', await makeCertRecord(['*.shop.test', 'shop.test']));
  // A name of its own under the wildcard, for another tenant: the exact record wins.
  await stack.seedDomain('vip.shop.test', 'globex');
  await stack.putCert('vip.shop.test', await makeCertRecord(['vip.shop.test']));
  stack.origin.set('/page.html', { body: 'acme page\n' });
  stack.origin.set('/sites/globex/page.html', { body: 'globex page\n' });
});

describe('tenant wildcard domains', () => {
  it('serves a subdomain with the wildcard certificate and routes it to the wildcard’s tenant', async () => {
    expect(await servedSan(stack.https, 'eu.shop.test')).toBe('DNS:*.shop.test, DNS:shop.test');
    const res = await get('eu.shop.test');
    expect([res.status, res.body]).toEqual([200, 'acme page\n']);
  });

  it('prefers a name’s own record and certificate', async () => {
    expect(await servedSan(stack.https, 'vip.shop.test')).toBe('DNS:vip.shop.test');
    const res = await get('vip.shop.test');
    expect([res.status, res.body]).toEqual([200, 'globex page\n']);
  });

  it('covers one label only, and not the apex without a record of its own', async () => {
    expect(await servedSan(stack.https, 'a.b.shop.test')).toMatch(/edge fallback/);
    expect((await get('a.b.shop.test')).status).toBe(404);
    expect((await get('shop.test')).status).toBe(404);
  });

  it('serves nothing under a domain without a wildcard record', async () => {
    await stack.putCert('*.other.test', await makeCertRecord(['*.other.test']));
    expect((await get('x.other.test')).status).toBe(404);
  });
});

it('leaves no error in the nginx error log', () => {
  expect(errorLogProblems(stack)).toEqual([]);
});

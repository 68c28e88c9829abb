import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCertRecord } from '../../lib/local/self-signed-cert.ts';
import { httpsGet } from '../harness/clients.ts';
import { TestDnsServer } from '../harness/dns-server.ts';
import { type EdgeStack, errorLogProblems, PLATFORM, startEdgeStack } from '../harness/edge-stack.ts';
import { TestBed } from '../harness/testbed.ts';

const bed = new TestBed('origin-guard');
let stack: EdgeStack;
const dns = new TestDnsServer();
// Stands in for the issuer sidecar: an origin pointed at it must never reach it.
const issuerHits: string[] = [];
let issuer: Server;
let issuerPort = 0;

beforeAll(async () => {
  await dns.start();
  issuer = createServer((req, res) => {
    issuerHits.push(req.url ?? '');
    res.end('{"account":"secret"}');
  });
  await new Promise<void>((resolve) => issuer.listen(0, '127.0.0.1', resolve));
  issuerPort = (issuer.address() as AddressInfo).port;
  stack = await startEdgeStack(bed, {
    // The operator allows exactly the test origin's address; everything else non-public is refused.
    origins: { allowNetworks: ['127.0.0.1/32'] },
    routing: { resolvers: [`127.0.0.1:${dns.port}`] },
    tls: { issuerUrl: `http://127.0.0.1:${issuerPort}` },
  });
  await stack.putCert(`*.${PLATFORM}`, await makeCertRecord([`*.${PLATFORM}`, PLATFORM]));
  dns.set('good.origin.test', '127.0.0.1');
  dns.set('meta.evil.test', '169.254.169.254');
  dns.set('loop.evil.test', '127.0.0.1');
  dns.set('private.evil.test', '10.1.2.3');
  stack.origin.set('/page.html', { body: 'origin page\n' });
  stack.origin.set('/headers', { body: 'headers\n' });
  stack.origin.set('/accel', { body: 'accel body\n', headers: { 'x-accel-redirect': '/internal' } });
  stack.origin.set('/internal', { body: 'internal\n' });
});
afterAll(async () => {
  await dns.stop();
  await new Promise<void>((resolve) => issuer.close(() => resolve()));
});

const get = (tenant: string, path = '/page.html', headers?: Record<string, string>) =>
  httpsGet({ port: stack.https, host: `${tenant}.${PLATFORM}`, path, headers });

describe('origins that cannot be turned inward', () => {
  const refused = (): [string, string][] => [
    ['the control port', `http://127.0.0.1:${stack.control}`],
    ['the issuer', `http://127.0.0.1:${issuerPort}`],
    ['redis', `http://127.0.0.1:${stack.redisPort}`],
    ['the edge itself', `http://127.0.0.1:${stack.https}`],
    ['instance metadata', 'http://169.254.169.254'],
    ['task metadata', 'http://169.254.170.2'],
    ['loopback outside the allow list', `http://127.0.0.2:${stack.origin.port}`],
    ['a private address', 'http://10.0.0.1'],
    ['IPv6 loopback', `http://[::1]:${stack.origin.port}`],
    ['an IPv4-mapped control port', `http://[::ffff:127.0.0.1]:${stack.control}`],
    ['an IPv4-mapped loopback in hex', `http://[::ffff:7f00:2]:${stack.origin.port}`],
    ['unique-local IPv6', 'http://[fd00::1]'],
    ['link-local IPv6', 'http://[fe80::1]'],
    ['a name resolving to instance metadata', 'http://meta.evil.test'],
    ['a name resolving to a private address', 'http://private.evil.test'],
    ['a name resolving to the control port', `http://loop.evil.test:${stack.control}`],
  ];

  it('refuses every inward origin with 502 and never connects to it', async () => {
    const cases = refused();
    for (const [i, [what, url]] of cases.entries()) {
      await stack.seedTenant(`inward${i}`, url);
      const res = await get(`inward${i}`);
      expect(res.status, what).toBe(502);
      expect(res.body, what).toBe('origin unavailable\n');
    }
    expect(issuerHits).toEqual([]);
    expect(stack.origin.seen.filter((r) => r.url === '/page.html')).toEqual([]);
  });

  it('serves an origin whose name resolves to an address the operator allowed, by that name', async () => {
    await stack.seedTenant('named', `http://good.origin.test:${stack.origin.port}`);
    const res = await get('named');
    expect(res.status).toBe(200);
    expect(res.body).toBe('origin page\n');
    const seen = stack.origin.seen.find((r) => r.url === '/page.html');
    expect(seen?.headers.host).toBe(`good.origin.test:${stack.origin.port}`);
    expect(dns.queries).toContain('good.origin.test');
  });

  it('answers 502 for an origin name that does not resolve', async () => {
    await stack.seedTenant('nxdomain', 'http://nowhere.evil.test');
    expect((await get('nxdomain')).status).toBe(502);
  });
});

describe('headers between clients, the edge and origins', () => {
  it('passes only allow-listed request headers to origins', async () => {
    await stack.seedTenant('hdr');
    const res = await get('hdr', '/headers', {
      'x-real-ip': '6.6.6.6',
      'true-client-ip': '6.6.6.6',
      'x-forwarded-for': '6.6.6.6',
      'x-forwarded-host': 'evil.example',
      'x-client-ip': '6.6.6.6',
      cookie: 'session=1',
      'x-anything': 'x',
      'accept-language': 'de',
      'user-agent': 'probe/1',
    });
    expect(res.status).toBe(200);
    const seen = stack.origin.seen.find((r) => r.url === '/headers');
    for (const h of [
      'x-real-ip',
      'true-client-ip',
      'x-forwarded-for',
      'x-forwarded-host',
      'x-client-ip',
      'cookie',
      'x-anything',
    ]) {
      expect(seen?.headers[h], h).toBeUndefined();
    }
    expect(seen?.headers['accept-language']).toBe('de');
    expect(seen?.headers['user-agent']).toBe('probe/1');
  });

  it('ignores X-Accel-Redirect from an origin', async () => {
    await stack.seedTenant('accel');
    const res = await get('accel', '/accel');
    expect(res.status).toBe(200);
    expect(res.body).toBe('accel body\n');
    expect(res.headers['x-accel-redirect']).toBeUndefined();
    expect(stack.origin.hits('/internal')).toBe(0);
  });

  it('logged no errors', () => {
    expect(errorLogProblems(stack)).toEqual([]);
  });
});

import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeCertRecord } from '../../lib/local/self-signed-cert.ts';
import { httpGet, httpsGet } from '../harness/clients.ts';
import { type EdgeStack, errorLogProblems, PLATFORM, startEdgeStack } from '../harness/edge-stack.ts';
import { TestBed } from '../harness/testbed.ts';

const bed = new TestBed('routing');
let stack: EdgeStack;

const get = (host: string, path: string, headers?: Record<string, string>) =>
  httpsGet({ port: stack.https, host, path, headers });

beforeAll(async () => {
  stack = await startEdgeStack(bed);
  await stack.seedTenant('acme');
  await stack.seedTenant('globex', `http://127.0.0.1:${stack.origin.port}/sites/globex`);
  await stack.seedDomain('www.acme.test', 'acme');
  await stack.putCert('www.acme.test', await makeCertRecord(['www.acme.test']));
  stack.origin.set('/page.html', { body: 'acme page\n' });
  stack.origin.set('/sites/globex/page.html', { body: 'globex page\n' });
});

describe('tenant routing', () => {
  it('routes a platform subdomain to its tenant', async () => {
    const res = await get(`acme.${PLATFORM}`, '/page.html');
    expect(res.status).toBe(200);
    expect(res.body).toBe('acme page\n');
  });

  it('routes the platform directory form, stripping the tenant from the path', async () => {
    const res = await get(PLATFORM, '/globex/page.html');
    expect(res.status).toBe(200);
    expect(res.body).toBe('globex page\n');
  });

  it('redirects a directory-form tenant root to its trailing slash', async () => {
    const res = await get(PLATFORM, '/globex?x=1');
    expect(res.status).toBe(301);
    expect(res.headers.location).toBe('/globex/?x=1');
  });

  it('routes a registered custom domain to its tenant', async () => {
    const res = await get('www.acme.test', '/page.html');
    expect(res.status).toBe(200);
    expect(res.body).toBe('acme page\n');
  });

  it('takes the origin from the tenant record, never from the request', async () => {
    stack.origin.set('/sites/globex/who', { body: 'globex\n' });
    const res = await get(`globex.${PLATFORM}`, '/who', {
      'x-forwarded-host': 'evil.example',
      'x-original-url': '/admin',
      'x-rewrite-url': '/admin',
      forwarded: 'host=evil.example',
    });
    expect(res.body).toBe('globex\n');
    const seen = stack.origin.seen.find((r) => r.url === '/sites/globex/who');
    expect(seen?.headers.host).toBe(`127.0.0.1:${stack.origin.port}`);
    for (const h of ['x-forwarded-host', 'x-original-url', 'x-rewrite-url', 'forwarded']) {
      expect(seen?.headers[h]).toBeUndefined();
    }
  });

  it('answers an unknown custom domain with 404 and never proxies it', async () => {
    const before = stack.origin.seen.length;
    const res = await get('nobody.example.test', '/page.html');
    expect(res.status).toBe(404);
    expect(res.body).toBe('unknown host\n');
    expect(stack.origin.seen.length).toBe(before);
  });

  it('answers an unknown tenant subdomain with 404 and never proxies it', async () => {
    const before = stack.origin.seen.length;
    const res = await get(`ghost.${PLATFORM}`, '/page.html');
    expect(res.status).toBe(404);
    expect(res.body).toBe('unknown tenant\n');
    expect(stack.origin.seen.length).toBe(before);
  });

  it('answers a deeper platform name and a directory without a tenant with 404', async () => {
    expect((await get(`a.b.${PLATFORM}`, '/')).status).toBe(404);
    expect((await get(PLATFORM, '/')).status).toBe(404);
  });

  it('rejects dot segments in the path', async () => {
    for (const path of ['/../sites/globex/page.html', '/a/%2e%2e/page.html', '/./page.html']) {
      const res = await get(`acme.${PLATFORM}`, path);
      expect(res.status).toBe(400);
    }
  });

  it('rejects headers larger than the configured buffers', async () => {
    const res = await get(`acme.${PLATFORM}`, '/page.html', { 'x-big': 'x'.repeat(20_000) });
    expect([400, 431]).toContain(res.status);
  });

  it('refuses a request body over the configured limit with 413, before the origin', async () => {
    const before = stack.origin.seen.length;
    const res = await httpsGet({
      port: stack.https,
      host: `acme.${PLATFORM}`,
      path: '/upload',
      method: 'POST',
      body: 'x'.repeat(1024 * 1024 + 1),
    });
    expect(res.status).toBe(413);
    expect(stack.origin.seen.length).toBe(before);
  });

  it('rejects a malformed Host on port 80', async () => {
    const res = await httpGet({ port: stack.http, host: 'bad_host!.test', path: '/' });
    expect(res.status).toBe(400);
  });
});

describe('port 80', () => {
  it('redirects known hosts to HTTPS, keeping the path and query', async () => {
    const res = await httpGet({ port: stack.http, host: 'www.acme.test', path: '/a/b?c=d' });
    expect(res.status).toBe(301);
    expect(res.headers.location).toBe(`https://www.acme.test:${stack.https}/a/b?c=d`);
  });

  it('uses 308 for methods other than GET and HEAD', async () => {
    const res = await httpGet({ port: stack.http, host: `acme.${PLATFORM}`, path: '/form', method: 'POST' });
    expect(res.status).toBe(308);
  });

  it('answers unknown hosts with 404 instead of a redirect', async () => {
    const res = await httpGet({ port: stack.http, host: 'nobody.example.test', path: '/' });
    expect(res.status).toBe(404);
    expect(res.headers.location).toBeUndefined();
  });

  it('serves a stored HTTP-01 challenge token for the host, and 404 for others', async () => {
    await stack.redis.set(stack.keys.challenge('www.acme.test', 'tok-123_x'), 'tok-123_x.stored-thumb');
    const hit = await httpGet({
      port: stack.http,
      host: 'www.acme.test',
      path: '/.well-known/acme-challenge/tok-123_x',
    });
    expect(hit.status).toBe(200);
    expect(hit.body).toBe('tok-123_x.stored-thumb');
    const miss = await httpGet({
      port: stack.http,
      host: 'www.acme.test',
      path: '/.well-known/acme-challenge/other',
    });
    expect(miss.status).toBe(404);
    const malformed = await httpGet({
      port: stack.http,
      host: 'www.acme.test',
      path: '/.well-known/acme-challenge/bad%20token',
    });
    expect(malformed.status).toBe(404);
  });
});

it('leaves no error in the nginx error log; the refused oversized body is one structured warning', () => {
  expect(errorLogProblems(stack)).toEqual([]);
  const tooLarge = readFileSync(stack.edge.errorLog, 'utf8')
    .split('\n')
    .filter((l) => l.includes('"event":"body_too_large"'))
    .map((l) => JSON.parse(l.slice(l.indexOf('{'))));
  expect(tooLarge).toEqual([
    {
      event: 'body_too_large',
      host: `acme.${PLATFORM}`,
      path: '/upload',
      limit: '1m',
      length: String(1024 * 1024 + 1),
    },
  ]);
});

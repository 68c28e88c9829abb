import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { makeCertRecord } from '../../lib/local/self-signed-cert.ts';
import { httpGet, httpsGet } from '../harness/clients.ts';
import { type EdgeStack, metric, PLATFORM, startEdgeStack } from '../harness/edge-stack.ts';
import { TestBed } from '../harness/testbed.ts';

const bed = new TestBed('cache');
let stack: EdgeStack;
const ACME = `acme.${PLATFORM}`;
// Small fresh objects are answered from the memory tier in front of proxy_cache.
const HIT = 'edge; hit; detail=memory';

const get = (host: string, path: string) => httpsGet({ port: stack.https, host, path });
const status = async (host: string, path: string) => (await get(host, path)).headers['cache-status'];

beforeAll(async () => {
  stack = await startEdgeStack(bed, { cache: { defaultTtlSeconds: 300 } });
  await stack.seedTenant('acme');
  await stack.seedTenant('globex');
  await stack.seedDomain('www.acme.test', 'acme');
  await stack.putCert('www.acme.test', await makeCertRecord(['www.acme.test']));
});

describe('cache', () => {
  it('stores a response and answers the next request from the cache, with Cache-Status', async () => {
    stack.origin.set('/c/a.txt', { body: 'A\n' });
    const first = await get(ACME, '/c/a.txt');
    expect(first.headers['cache-status']).toBe('edge; fwd=miss; fwd-status=200; stored');
    const second = await get(ACME, '/c/a.txt');
    expect(second.headers['cache-status']).toBe('edge; hit; detail=memory');
    expect(second.body).toBe('A\n');
    expect(stack.origin.hits('/c/a.txt')).toBe(1);
  });

  it('keys the cache by host and tenant: the same path on another tenant is a separate entry', async () => {
    stack.origin.set('/c/shared.txt', { body: 'S\n' });
    await get(ACME, '/c/shared.txt');
    expect(await status(`globex.${PLATFORM}`, '/c/shared.txt')).toBe(
      'edge; fwd=miss; fwd-status=200; stored',
    );
    expect(stack.origin.hits('/c/shared.txt')).toBe(2);
  });

  it('honours the origin Cache-Control: no-store is never cached', async () => {
    stack.origin.set('/c/private.txt', { headers: { 'cache-control': 'no-store' } });
    await get(ACME, '/c/private.txt');
    await get(ACME, '/c/private.txt');
    expect(stack.origin.hits('/c/private.txt')).toBe(2);
  });

  it('honours the origin Cache-Control max-age, and the default TTL when there is none', async () => {
    stack.origin.set('/c/short.txt', { headers: { 'cache-control': 'max-age=1' } });
    stack.origin.set('/c/default.txt', {});
    await get(ACME, '/c/short.txt');
    await get(ACME, '/c/default.txt');
    await sleep(2100);
    // Expired, and the response allows no stale use: fetched again before it is served.
    expect(await status(ACME, '/c/short.txt')).toBe('edge; fwd=stale; fwd-status=200; stored');
    expect(stack.origin.hits('/c/short.txt')).toBe(2);
    expect(await status(ACME, '/c/default.txt')).toBe('edge; hit; detail=memory');
    expect(stack.origin.hits('/c/default.txt')).toBe(1);
  });

  it('collapses concurrent misses into one origin request (cache lock)', async () => {
    stack.origin.set('/c/slow.txt', { body: 'slow\n', delayMs: 300 });
    const replies = await Promise.all(Array.from({ length: 10 }, () => get(ACME, '/c/slow.txt')));
    expect(replies.every((r) => r.body === 'slow\n')).toBe(true);
    expect(stack.origin.hits('/c/slow.txt')).toBe(1);
  });

  it('serves stale while revalidating in the background (stale-while-revalidate)', async () => {
    stack.origin.set('/c/swr.txt', {
      body: 'v1\n',
      headers: { 'cache-control': 'max-age=1, stale-while-revalidate=60' },
    });
    await get(ACME, '/c/swr.txt');
    await sleep(2100); // nginx counts validity in whole seconds
    stack.origin.set('/c/swr.txt', { body: 'v2\n', headers: { 'cache-control': 'max-age=60' } });
    const stale = await get(ACME, '/c/swr.txt');
    expect(stale.headers['cache-status']).toBe('edge; hit; detail=stale-while-revalidate');
    expect(stale.body).toBe('v1\n');
    await vi.waitFor(async () => expect((await get(ACME, '/c/swr.txt')).body).toBe('v2\n'), {
      timeout: 5000,
    });
  });

  it('passes a POST to the origin without caching it', async () => {
    stack.origin.set('/c/form', { body: 'posted\n' });
    await httpsGet({ port: stack.https, host: ACME, path: '/c/form', method: 'POST', body: 'x=1' });
    await httpsGet({ port: stack.https, host: ACME, path: '/c/form', method: 'POST', body: 'x=1' });
    expect(stack.origin.hits('/c/form')).toBe(2);
  });

  it('counts requests and cache statuses by tenant in /metrics', async () => {
    expect(await metric(stack, 'edge_cache_total{tenant="acme",status="HIT"}')).toBeGreaterThan(0);
    expect(await metric(stack, 'edge_requests_total{tenant="acme",status="2xx"}')).toBeGreaterThan(0);
  });
});

describe('memory tier', () => {
  it('answers a small fresh object from memory with its headers, Age and length, HEAD without a body', async () => {
    stack.origin.set('/m/page.html', {
      body: '<p>hi</p>\n',
      headers: { 'content-type': 'text/html', etag: '"v1"', 'cache-control': 'max-age=300' },
    });
    await get(ACME, '/m/page.html');
    const hit = await get(ACME, '/m/page.html');
    expect(hit.headers['cache-status']).toBe(HIT);
    expect(hit.body).toBe('<p>hi</p>\n');
    expect(hit.headers['content-type']).toBe('text/html');
    expect(hit.headers.etag).toBe('"v1"');
    expect(hit.headers['content-length']).toBe('10');
    expect(Number(hit.headers.age)).toBeGreaterThanOrEqual(0);
    const head = await httpsGet({ port: stack.https, host: ACME, path: '/m/page.html', method: 'HEAD' });
    expect(head.headers['cache-status']).toBe(HIT);
    expect(head.body).toBe('');
    expect(stack.origin.hits('/m/page.html')).toBe(1);
  });

  it('leaves Range and conditional requests to proxy_cache', async () => {
    stack.origin.set('/m/range.txt', { body: '0123456789', headers: { etag: '"r1"' } });
    await get(ACME, '/m/range.txt');
    const range = await httpsGet({
      port: stack.https,
      host: ACME,
      path: '/m/range.txt',
      headers: { range: 'bytes=2-4' },
    });
    expect(range.status).toBe(206);
    expect(range.body).toBe('234');
    expect(range.headers['cache-status']).toBe('edge; hit');
    const cond = await httpsGet({
      port: stack.https,
      host: ACME,
      path: '/m/range.txt',
      headers: { 'if-none-match': '"r1"' },
    });
    expect(cond.status).toBe(304);
    expect(stack.origin.hits('/m/range.txt')).toBe(1);
  });

  it('keeps objects over the size limit in proxy_cache only', async () => {
    stack.origin.set('/m/big.bin', { body: 'x'.repeat(70_000) });
    await get(ACME, '/m/big.bin');
    const second = await get(ACME, '/m/big.bin');
    expect(second.headers['cache-status']).toBe('edge; hit');
    expect(second.body.length).toBe(70_000);
  });

  it('does not keep a response that sets a cookie', async () => {
    stack.origin.set('/m/cookie.txt', { headers: { 'set-cookie': 'a=b', 'cache-control': 'max-age=60' } });
    await get(ACME, '/m/cookie.txt');
    const second = await get(ACME, '/m/cookie.txt');
    expect(second.headers['cache-status']).not.toBe(HIT);
    expect(second.headers['set-cookie']).toEqual(['a=b']);
  });

  it('counts memory answers by tenant', async () => {
    expect(await metric(stack, 'edge_cache_total{tenant="acme",status="MEMORY"}')).toBeGreaterThan(0);
  });
});

describe('purge', () => {
  /** Fetches a URL twice so it is cached; originPath is the path the origin sees. */
  const warm = async (host: string, path: string, originPath = path.split('?')[0] ?? path) => {
    stack.origin.set(originPath, { body: `${path}\n` });
    await get(host, path);
    expect(await status(host, path)).toBe(HIT);
  };

  it('purges a whole tenant, leaving other tenants cached', async () => {
    await warm(ACME, '/p/t1.txt');
    await warm('www.acme.test', '/p/t2.txt');
    await warm(`globex.${PLATFORM}`, '/p/t3.txt');
    const res = await stack.purge({ tenant: 'acme', scope: 'tenant' });
    expect(res.status).toBe(200);
    const body = JSON.parse(res.body);
    expect(body.purged).toEqual({ tenant: 'acme', scope: 'tenant' });
    expect(body.generation).toBeGreaterThan(0);
    expect(await status(ACME, '/p/t1.txt')).toMatch(/fwd=miss/);
    expect(await status('www.acme.test', '/p/t2.txt')).toMatch(/fwd=miss/);
    expect(await status(`globex.${PLATFORM}`, '/p/t3.txt')).toBe(HIT);
  });

  it('purges one host of a tenant', async () => {
    await warm(ACME, '/p/h.txt');
    await warm('www.acme.test', '/p/h.txt');
    const res = await stack.purge({ tenant: 'acme', scope: 'host', host: 'WWW.acme.test' });
    expect(JSON.parse(res.body).purged).toEqual({ tenant: 'acme', scope: 'host', target: 'www.acme.test' });
    expect(await status('www.acme.test', '/p/h.txt')).toMatch(/fwd=miss/);
    expect(await status(ACME, '/p/h.txt')).toBe(HIT);
  });

  it('purges a path prefix on every host of the tenant, including the directory form', async () => {
    await warm(ACME, '/docs/a.html');
    await warm(PLATFORM, '/acme/docs/b.html', '/docs/b.html');
    await warm(ACME, '/blog/c.html');
    const res = await stack.purge({ tenant: 'acme', scope: 'prefix', prefix: '/docs/' });
    expect(res.status).toBe(200);
    expect(await status(ACME, '/docs/a.html')).toMatch(/fwd=miss/);
    expect(await status(PLATFORM, '/acme/docs/b.html')).toMatch(/fwd=miss/);
    expect(await status(ACME, '/blog/c.html')).toBe(HIT);
  });

  it('purges a single URL, query included', async () => {
    await warm(ACME, '/u/x.txt?v=1');
    await warm(ACME, '/u/x.txt?v=2');
    const res = await stack.purge({ tenant: 'acme', scope: 'url', url: `https://${ACME}/u/x.txt?v=1` });
    expect(res.status).toBe(200);
    expect(await status(ACME, '/u/x.txt?v=1')).toMatch(/fwd=miss/);
    expect(await status(ACME, '/u/x.txt?v=2')).toBe(HIT);
  });

  it('is idempotent for a replayed generation and never goes back', async () => {
    const first = JSON.parse(
      (await stack.purge({ tenant: 'globex', scope: 'tenant', generation: 5_000 })).body,
    );
    expect(first.generation).toBeGreaterThanOrEqual(5_000);
    await warm(`globex.${PLATFORM}`, '/p/replay.txt');
    const again = JSON.parse(
      (await stack.purge({ tenant: 'globex', scope: 'tenant', generation: 5_000 })).body,
    );
    expect(again.generation).toBe(first.generation);
    expect(await status(`globex.${PLATFORM}`, '/p/replay.txt')).toBe(HIT);
  });

  it('refuses a purge without a token (401) or with a wrong one (403)', async () => {
    const none = await stack.purge({ tenant: 'acme', scope: 'tenant' }, null);
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toMatch(/Bearer/);
    const wrong = await stack.purge({ tenant: 'acme', scope: 'tenant' }, 'x'.repeat(48));
    expect(wrong.status).toBe(403);
  });

  it.each([
    [{ tenant: 'acme', scope: 'prefix', prefix: '/docs/../admin' }, /dot segment/],
    [{ tenant: 'acme', scope: 'prefix', prefix: '/%2e%2e/etc' }, /dot segment/],
    [{ tenant: 'acme', scope: 'url', url: 'https://x.test/a/../../b' }, /dot segment/],
    [{ tenant: 'acme', scope: 'prefix', prefix: 'docs' }, /must start with/],
    [{ tenant: '../acme', scope: 'tenant' }, /tenant must be/],
    [{ tenant: 'acme', scope: 'host', host: 'bad host' }, /host/],
    [{ tenant: 'acme', scope: 'everything' }, /scope must be/],
    [{ tenant: 'acme', scope: 'url', url: 'ftp://x.test/' }, /absolute http/],
    [{ tenant: 'acme', scope: 'tenant', generation: -1 }, /generation/],
    ['not json', /not valid JSON/],
  ])('rejects invalid input %j with 400 and says why', async (body, why) => {
    const res = await stack.purge(body);
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body).error).toMatch(why);
  });

  it('refuses a body over the size limit with 413', async () => {
    const res = await stack.purge({ tenant: 'acme', scope: 'prefix', prefix: `/${'a'.repeat(20_000)}` });
    expect(res.status).toBe(413);
  });

  it('only accepts POST on /purge', async () => {
    const res = await httpGet({ port: stack.control, path: '/purge' });
    expect(res.status).toBe(405);
  });
});

describe('health', () => {
  it('reports liveness and readiness', async () => {
    expect((await httpGet({ port: stack.control, path: '/healthz' })).status).toBe(200);
    const ready = await httpGet({ port: stack.control, path: '/readyz' });
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toEqual({ ready: true, region: 'local' });
  });

  it('exposes Prometheus metrics with HELP and TYPE lines', async () => {
    const res = await httpGet({ port: stack.control, path: '/metrics' });
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.body).toMatch(/# TYPE edge_handshakes_total counter/);
    expect(res.body).toMatch(/edge_info\{region="local",engine="native"\} 1/);
  });
});

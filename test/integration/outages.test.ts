import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { makeCertRecord } from '../../lib/local/self-signed-cert.ts';
import { httpGet, httpsGet, servedSan } from '../harness/clients.ts';
import { type EdgeStack, metric, PLATFORM, startEdgeStack } from '../harness/edge-stack.ts';
import { TestBed } from '../harness/testbed.ts';

const bed = new TestBed('outages');
let stack: EdgeStack;
const ACME = `acme.${PLATFORM}`;

beforeAll(async () => {
  // Short TTLs so the test reaches the "past its TTL, Redis down" path within seconds.
  stack = await startEdgeStack(bed, {
    tls: { shmTtlSeconds: 1, missTtlSeconds: 1 },
    routing: { recordTtlSeconds: 1, negativeTtlSeconds: 1 },
    timeouts: { originConnectMs: 500, originReadMs: 1000 },
  });
  await stack.seedTenant('acme');
  await stack.seedDomain('www.acme.test', 'acme');
  await stack.putCert('www.acme.test', await makeCertRecord(['www.acme.test']));
  // Stale copies only as the response allows (RFC 5861): this one may be served on errors for a minute.
  stack.origin.set('/o/page.txt', {
    body: 'cached page\n',
    headers: { 'cache-control': 'max-age=1, stale-if-error=60' },
  });
  stack.origin.set('/o/strict.txt', { body: 'strict page\n', headers: { 'cache-control': 'max-age=1' } });
});

describe('origin outage', () => {
  it('serves cached URLs stale while the origin is down when they allow it (stale-if-error), and says so', async () => {
    expect((await httpsGet({ port: stack.https, host: ACME, path: '/o/page.txt' })).status).toBe(200);
    expect((await httpsGet({ port: stack.https, host: ACME, path: '/o/strict.txt' })).status).toBe(200);
    await stack.origin.stop();
    await sleep(2100);
    const res = await httpsGet({ port: stack.https, host: ACME, path: '/o/page.txt' });
    expect(res.status).toBe(200);
    expect(res.body).toBe('cached page\n');
    expect(res.headers['cache-status']).toBe('edge; hit; detail=stale-if-error');
  });

  it('answers 502, not the stale copy, when the response did not allow stale-if-error', async () => {
    const res = await httpsGet({ port: stack.https, host: ACME, path: '/o/strict.txt' });
    expect(res.status).toBe(502);
    expect(res.body).not.toContain('strict page');
  });

  it('answers 502 for a URL it never cached while the origin is down', async () => {
    const res = await httpsGet({ port: stack.https, host: ACME, path: '/o/never.txt' });
    expect(res.status).toBe(502);
  });
});

describe('Redis outage', () => {
  it('keeps serving certificates and routes it has seen, past their TTL', async () => {
    await stack.origin.start(stack.origin.port);
    stack.origin.set('/r/ok.txt', { body: 'still here\n' });
    expect(await servedSan(stack.https, 'www.acme.test')).toBe('DNS:www.acme.test');
    expect((await httpsGet({ port: stack.https, host: 'www.acme.test', path: '/r/ok.txt' })).status).toBe(
      200,
    );

    await stack.redisServer.kill();
    await sleep(1500); // past every TTL configured above
    for (let i = 0; i < 4; i++) {
      expect(await servedSan(stack.https, 'www.acme.test')).toBe('DNS:www.acme.test');
    }
    const res = await httpsGet({ port: stack.https, host: 'www.acme.test', path: '/r/ok.txt' });
    expect(res.status).toBe(200);
    expect(res.body).toBe('still here\n');
    expect(await metric(stack, 'edge_errors_total{kind="redis"}')).toBeGreaterThan(0);
  });

  it('serves the fallback for names it has never seen, and 503 for hosts it cannot route', async () => {
    expect(await servedSan(stack.https, 'new.acme.test')).toMatch(/edge fallback/);
    const res = await httpsGet({ port: stack.https, host: 'new.acme.test', path: '/' });
    expect(res.status).toBe(503);
    expect(res.body).toBe('routing store unavailable\n');
  });

  it('reports not ready, and refuses purges it cannot store, saying why', async () => {
    const ready = await httpGet({ port: stack.control, path: '/readyz' });
    expect(ready.status).toBe(503);
    expect(JSON.parse(ready.body).redis).toMatch(/failed to connect to redis/);
    const purge = await stack.purge({ tenant: 'acme', scope: 'tenant' });
    expect(purge.status).toBe(503);
    expect(JSON.parse(purge.body).error).toBe('purge store unavailable');
    expect((await httpGet({ port: stack.control, path: '/healthz' })).status).toBe(200);
  });

  it('recovers when Redis is back: data written before the outage is intact', async () => {
    await stack.restartRedis();
    // Redis runs without persistence (the store rebuilds it); reseed as the sqs-listener would.
    await stack.seedTenant('acme');
    await stack.seedDomain('new.acme.test', 'acme');
    await stack.putCert('new.acme.test', await makeCertRecord(['new.acme.test']));
    // The name was remembered as unknown for tls.missTtlSeconds (1 s here).
    await vi.waitFor(
      async () => expect(await servedSan(stack.https, 'new.acme.test')).toBe('DNS:new.acme.test'),
      {
        timeout: 5000,
        interval: 200,
      },
    );
    expect((await httpGet({ port: stack.control, path: '/readyz' })).status).toBe(200);
  });
});

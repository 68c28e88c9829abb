import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { makeCertRecord } from '../../lib/local/self-signed-cert.ts';
import { httpsGet, servedSan } from '../harness/clients.ts';
import { type EdgeStack, errorLogProblems, metric, startEdgeStack } from '../harness/edge-stack.ts';
import { TestBed } from '../harness/testbed.ts';

// The edge converges to Redis (issue 10, item 3): whatever reaches Redis by any path — here
// redis-cli, as an operator repairing by hand would — is served within the configured bound,
// and known names keep serving from their last copies while Redis is down.
const bed = new TestBed('convergence');
let stack: EdgeStack;

const PURGE_TTL_S = 1;
const RECORD_TTL_S = 1;
const NEGATIVE_TTL_S = 1;
const MISS_TTL_S = 1;
const CERT_TTL_S = 2;
/** The bound a test allows: the TTL plus generous slack for second-granular freshness and a slow machine. */
const within = (ttlS: number) => (ttlS + 3) * 1000;

const run = promisify(execFile);
async function redisCli(...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-p', String(stack.redisPort), ...args]);
  return stdout.trim();
}

const get = (host: string, path: string) => httpsGet({ port: stack.https, host, path });

/**
 * Redis stopped without giving up its port (SIGSTOP: the edge's commands time out): a restart on
 * the same port could race other test runs on this machine for it.
 */
async function whileRedisIsDown(fn: () => Promise<void>): Promise<void> {
  const pid = stack.redisServer.pid as number;
  process.kill(pid, 'SIGSTOP');
  try {
    await fn();
  } finally {
    process.kill(pid, 'SIGCONT');
  }
}

beforeAll(async () => {
  stack = await startEdgeStack(bed, {
    tls: { shmTtlSeconds: CERT_TTL_S, missTtlSeconds: MISS_TTL_S },
    routing: { recordTtlSeconds: RECORD_TTL_S, negativeTtlSeconds: NEGATIVE_TTL_S },
    caches: { purgeTtlSeconds: PURGE_TTL_S, resurrectSeconds: 1 },
    timeouts: { redisMs: 200 },
  });
  await stack.seedTenant('acme');
  await stack.seedDomain('www.acme.test', 'acme');
  await stack.putCert('www.acme.test', await makeCertRecord(['www.acme.test']));
});

describe('the edge converges to Redis within the configured bound', () => {
  it('honours a purge generation written straight into Redis with redis-cli', async () => {
    stack.origin.set('/conv/page.txt', { body: 'v1\n', headers: { 'cache-control': 'max-age=600' } });
    expect((await get('www.acme.test', '/conv/page.txt')).body).toBe('v1\n');
    // Warm in both workers: every answer from here on is the cached v1.
    for (let i = 0; i < 6; i++) {
      const res = await get('www.acme.test', '/conv/page.txt');
      expect(res.body).toBe('v1\n');
      expect(res.headers['cache-status']).toMatch(/hit/);
    }
    stack.origin.set('/conv/page.txt', { body: 'v2\n', headers: { 'cache-control': 'max-age=600' } });
    // A generation in the edge's format (lua/edge/purge.lua), newer than any before it.
    await redisCli('HSET', stack.keys.purge('acme'), 't', String(Date.now()));
    const written = Date.now();
    await vi.waitFor(async () => expect((await get('www.acme.test', '/conv/page.txt')).body).toBe('v2\n'), {
      timeout: within(PURGE_TTL_S) + 2000,
      interval: 100,
    });
    expect(Date.now() - written).toBeLessThan(within(PURGE_TTL_S));
    // And no worker goes back to the purged copy.
    for (let i = 0; i < 6; i++) expect((await get('www.acme.test', '/conv/page.txt')).body).toBe('v2\n');
  });

  it('serves a domain record and certificate added by hand, also after the name was remembered as unknown', async () => {
    stack.origin.set('/conv/hand.txt', { body: 'by hand\n', headers: { 'cache-control': 'no-store' } });
    expect((await get('hand.acme.test', '/conv/hand.txt')).status).toBe(404);
    expect(await servedSan(stack.https, 'hand.acme.test')).toMatch(/edge fallback/);
    const record = JSON.stringify({ domain: 'hand.acme.test', tenant: 'acme' });
    await redisCli('SET', stack.keys.domain('hand.acme.test'), record);
    await redisCli(
      'SET',
      stack.keys.cert('hand.acme.test'),
      JSON.stringify(await makeCertRecord(['hand.acme.test'])),
    );
    const written = Date.now();
    await vi.waitFor(
      async () => {
        const res = await get('hand.acme.test', '/conv/hand.txt');
        expect(res.status).toBe(200);
        expect(res.body).toBe('by hand\n');
        expect(await servedSan(stack.https, 'hand.acme.test')).toBe('DNS:hand.acme.test');
      },
      { timeout: within(Math.max(NEGATIVE_TTL_S, MISS_TTL_S)) + 2000, interval: 100 },
    );
    expect(Date.now() - written).toBeLessThan(within(Math.max(NEGATIVE_TTL_S, MISS_TTL_S)));
  });

  it('serves a tenant record changed by hand within the record TTL', async () => {
    const other = `http://127.0.0.1:${stack.origin.port}/elsewhere`;
    stack.origin.set('/elsewhere/conv/moved.txt', {
      body: 'moved\n',
      headers: { 'cache-control': 'no-store' },
    });
    stack.origin.set('/conv/moved.txt', { body: 'before\n', headers: { 'cache-control': 'no-store' } });
    expect((await get('www.acme.test', '/conv/moved.txt')).body).toBe('before\n');
    await redisCli(
      'SET',
      stack.keys.tenant('acme'),
      JSON.stringify({ id: 'acme', origin: { type: 'http', url: other } }),
    );
    await vi.waitFor(
      async () => expect((await get('www.acme.test', '/conv/moved.txt')).body).toBe('moved\n'),
      {
        timeout: within(RECORD_TTL_S) + 2000,
        interval: 100,
      },
    );
    await stack.seedTenant('acme');
    await vi.waitFor(
      async () => expect((await get('www.acme.test', '/conv/moved.txt')).body).toBe('before\n'),
      {
        timeout: within(RECORD_TTL_S) + 2000,
        interval: 100,
      },
    );
  });

  it('keeps serving known hosts from their last copies while Redis is stopped, past every TTL', async () => {
    stack.origin.set('/conv/kept.txt', { body: 'kept\n', headers: { 'cache-control': 'max-age=600' } });
    expect((await get('www.acme.test', '/conv/kept.txt')).body).toBe('kept\n');
    const errorsBefore = await metric(stack, 'edge_errors_total{kind="redis"}');
    await whileRedisIsDown(async () => {
      await sleep((Math.max(PURGE_TTL_S, RECORD_TTL_S, CERT_TTL_S) + 1) * 1000);
      const until = Date.now() + 3000;
      let n = 0;
      while (Date.now() < until) {
        const res = await get('www.acme.test', '/conv/kept.txt');
        expect(res.status).toBe(200);
        expect(res.body).toBe('kept\n');
        // The purge state is known too, so the cached copy is used, not bypassed.
        expect(res.headers['cache-status']).toMatch(/hit/);
        expect(await servedSan(stack.https, 'www.acme.test')).toBe('DNS:www.acme.test');
        n++;
      }
      expect(n).toBeGreaterThan(3);
      // Redis is asked again once per resurrect window and key, not on every request.
      const errors = (await metric(stack, 'edge_errors_total{kind="redis"}')) - errorsBefore;
      expect(errors).toBeGreaterThan(0);
      expect(errors).toBeLessThan(n * 2);
    });
  });

  it('answers names it never saw with the fallback and 503 while Redis is down, and converges when it is back', async () => {
    await whileRedisIsDown(async () => {
      expect(await servedSan(stack.https, 'fresh.acme.test')).toMatch(/edge fallback/);
      expect((await get('fresh.acme.test', '/')).status).toBe(503);
    });
    await stack.seedTenant('acme');
    await stack.seedDomain('fresh.acme.test', 'acme');
    await stack.putCert('fresh.acme.test', await makeCertRecord(['fresh.acme.test']));
    stack.origin.set('/conv/fresh.txt', { body: 'fresh\n', headers: { 'cache-control': 'no-store' } });
    await vi.waitFor(
      async () => {
        expect((await get('fresh.acme.test', '/conv/fresh.txt')).body).toBe('fresh\n');
        expect(await servedSan(stack.https, 'fresh.acme.test')).toBe('DNS:fresh.acme.test');
      },
      { timeout: within(Math.max(NEGATIVE_TTL_S, MISS_TTL_S)) + 2000, interval: 100 },
    );
  });

  it('a Redis restarted empty: known hosts keep their last copies until the bootstrap, and no 404 outlives it', async () => {
    // The chaos run's 404s: between a region Redis restart and the sqs-listener's bootstrap the
    // records were absent, the edge remembered the stable hosts as unknown (negative TTL) and kept
    // answering 404 after the bootstrap had brought them back.
    const sentinel = `${stack.keys.prefix}:@bootstrapped`;
    const tenantKey = stack.keys.tenant('acme');
    const domainKey = stack.keys.domain('www.acme.test');
    const [tenantRecord, domainRecord] = [await redisCli('GET', tenantKey), await redisCli('GET', domainKey)];
    stack.origin.set('/conv/boot.txt', { body: 'boot\n', headers: { 'cache-control': 'no-store' } });
    await redisCli('SET', sentinel, '{"runId":"before"}');
    // A name it never saw, asked of a bootstrapped Redis: a plain 404 (and the sentinel seen).
    expect((await get('never.acme.test', '/')).status).toBe(404);
    expect((await get('www.acme.test', '/conv/boot.txt')).status).toBe(200);

    // What the edge's routing sees of a restart: the records and the sentinel gone.
    await redisCli('DEL', tenantKey, domainKey, sentinel);
    const until = Date.now() + (RECORD_TTL_S + NEGATIVE_TTL_S + 2) * 1000;
    const statuses = new Map<number, number>();
    while (Date.now() < until) {
      const res = await get('www.acme.test', '/conv/boot.txt');
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      await sleep(50);
    }
    expect([...statuses.keys()]).toEqual([200]);
    // Nothing known about it: unavailable, not "unknown host".
    expect((await get('other.acme.test', '/')).status).toBe(503);

    // The bootstrap refills it and writes the sentinel: served at once, and unknown names are 404 again.
    await redisCli('SET', tenantKey, tenantRecord);
    await redisCli('SET', domainKey, domainRecord);
    await redisCli('SET', sentinel, '{"runId":"after"}');
    expect((await get('www.acme.test', '/conv/boot.txt')).status).toBe(200);
    await vi.waitFor(async () => expect((await get('other.acme.test', '/')).status).toBe(404), {
      timeout: within(NEGATIVE_TTL_S),
      interval: 100,
    });
  });

  it('logged no errors', () => {
    expect(errorLogProblems(stack)).toEqual([]);
  });
});

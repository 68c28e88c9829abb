import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { httpGet, httpsGet } from '../harness/clients.ts';
import { type EdgeStack, errorLogProblems, PLATFORM, startEdgeStack } from '../harness/edge-stack.ts';
import { TestBed } from '../harness/testbed.ts';

const bed = new TestBed('purge-and-logs');
let stack: EdgeStack;
const MAX = '9007199254740991'; // 2^53 - 1, the largest generation accepted

beforeAll(async () => {
  stack = await startEdgeStack(bed);
  await stack.seedTenant('big');
  await stack.seedTenant('sw');
  stack.origin.set('/g.txt', { body: 'g\n', headers: { 'cache-control': 'max-age=600' } });
  stack.origin.set('/sw.js', { body: 'sw\n', headers: { 'service-worker-allowed': '/' } });
});

const cacheStatus = async (host: string, path: string) =>
  String((await httpsGet({ port: stack.https, host, path })).headers['cache-status']);

describe('purge generations are bounded integers, exact end to end', () => {
  const host = `big.${PLATFORM}`;

  it(`stores, answers and compares ${MAX} exactly`, async () => {
    await cacheStatus(host, '/g.txt');
    expect(await cacheStatus(host, '/g.txt')).toMatch(/; hit/);
    const first = await stack.purge(
      `{"tenant":"big","scope":"host","host":"${host}","generation":9007199254740990}`,
    );
    expect(first.status).toBe(200);
    expect(first.body).toContain('"generation":9007199254740990,');
    expect(await cacheStatus(host, '/g.txt')).toMatch(/fwd=miss/);
    expect(await cacheStatus(host, '/g.txt')).toMatch(/; hit/);
    // One more than the last: a distinct generation, so a distinct cache key.
    const res = await stack.purge(`{"tenant":"big","scope":"tenant","generation":${MAX}}`);
    expect(res.status).toBe(200);
    expect(res.body).toContain(`"generation":${MAX},`);
    expect(await stack.redis.hget(stack.keys.purge('big'), 't')).toBe(MAX);
    expect(await cacheStatus(host, '/g.txt')).toMatch(/fwd=miss/);
  });

  it('keeps the largest generation when an older one is replayed', async () => {
    const res = await stack.purge('{"tenant":"big","scope":"tenant","generation":9007199254740000}');
    expect(res.body).toContain(`"generation":${MAX},`);
  });

  it.each(['9007199254740992', '9007199254740993', '1e300', '0', '1.5'])(
    'refuses generation %s with 400',
    async (gen) => {
      const res = await stack.purge(`{"tenant":"big","scope":"tenant","generation":${gen}}`);
      expect(res.status).toBe(400);
      expect(JSON.parse(res.body).error).toBe('generation must be an integer from 1 to 9007199254740991');
    },
  );

  it('answers 409 to a new purge that would leave the range, and changes nothing', async () => {
    const res = await stack.purge({ tenant: 'big', scope: 'tenant' });
    expect(res.status).toBe(409);
    expect(await stack.redis.hget(stack.keys.purge('big'), 't')).toBe(MAX);
  });
});

describe('directory-form tenants share one browser origin', () => {
  it('strips Service-Worker-Allowed in the directory form only', async () => {
    const dir = await httpsGet({ port: stack.https, host: PLATFORM, path: '/sw/sw.js' });
    expect(dir.status).toBe(200);
    expect(dir.headers['service-worker-allowed']).toBeUndefined();
    const again = await httpsGet({ port: stack.https, host: PLATFORM, path: '/sw/sw.js' });
    expect(again.headers['service-worker-allowed']).toBeUndefined();
    const sub = await httpsGet({ port: stack.https, host: `sw.${PLATFORM}`, path: '/sw.js' });
    expect(sub.headers['service-worker-allowed']).toBe('/');
  });
});

describe('tokens never reach the logs', () => {
  it('keeps query-string tokens out of the error and access logs', async () => {
    const secret = 'SECRETQUERYTOKEN0123456789';
    // A refused control request logs a warning; so does a tenant whose origin is refused.
    const control = await httpGet({
      port: stack.control,
      path: `/purge?token=${secret}`,
      method: 'POST',
      body: '{}',
    });
    expect(control.status).toBe(401);
    await stack.seedTenant('inward', `http://127.0.0.1:${stack.control}`);
    const res = await httpsGet({
      port: stack.https,
      host: `inward.${PLATFORM}`,
      path: `/x?access_token=${secret}`,
    });
    expect(res.status).toBe(502);
    const bearer = await httpGet({
      port: stack.control,
      path: '/purge',
      method: 'POST',
      headers: { authorization: `Bearer ${secret}` },
      body: '{}',
    });
    expect(bearer.status).toBe(403);
    // The access log is written in batches: wait until the request's line is there.
    let access = '';
    for (let i = 0; i < 50 && !access.includes('"uri":"/x?"'); i++) {
      await sleep(100);
      access = readFileSync(stack.edge.accessLog, 'utf8');
    }
    expect(access).toContain('"uri":"/x?"');
    const errors = readFileSync(stack.edge.errorLog, 'utf8');
    expect(errors).toContain('"event":"control_unauthorized"');
    expect(errors).toContain('"event":"origin_refused"');
    expect(errors).not.toContain(secret);
    expect(access).not.toContain(secret);
  });

  it('logged no errors', () => {
    expect(errorLogProblems(stack)).toEqual([]);
  });
});

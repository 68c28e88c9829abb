import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { httpsGet } from '../harness/clients.ts';
import { type EdgeStack, PLATFORM, startEdgeStack } from '../harness/edge-stack.ts';
import { TestBed } from '../harness/testbed.ts';

// RFC 5861 stale-if-error when the origin answers 5xx itself (the origin-down case is in
// outages.test.ts): stale within the window the stored response allows, the origin's answer otherwise.
const bed = new TestBed('stale-if-error');
let stack: EdgeStack;
const HOST = `acme.${PLATFORM}`;

const get = (path: string) => httpsGet({ port: stack.https, host: HOST, path });

const COPIES: Record<string, string> = {
  '/allows.txt': 'max-age=1, stale-if-error=60',
  '/strict.txt': 'max-age=1',
  '/short.txt': 'max-age=1, stale-if-error=1',
  '/must.txt': 'max-age=1, stale-if-error=60, must-revalidate',
};

beforeAll(async () => {
  stack = await startEdgeStack(bed);
  await stack.seedTenant('acme');
  for (const [path, cc] of Object.entries(COPIES)) {
    stack.origin.set(path, { body: `cached ${path}\n`, headers: { 'cache-control': cc } });
  }
  for (const path of Object.keys(COPIES)) {
    const res = await get(path);
    expect(res.status).toBe(200);
  }
  // Every copy stale; /short.txt past its one second of stale-if-error too.
  await sleep(3100);
  for (const path of Object.keys(COPIES)) {
    stack.origin.set(path, { status: 500, body: `origin error for ${path}\n` });
  }
});

describe('stale-if-error on an origin 5xx', () => {
  it('serves the stale copy for 500, 502, 503 and 504 when the stored response allows it, and says so', async () => {
    for (const status of [500, 502, 503, 504]) {
      const before = stack.origin.hits('/allows.txt');
      stack.origin.set('/allows.txt', { status, body: `origin ${status}\n` });
      const res = await get('/allows.txt');
      expect(res.status).toBe(200);
      expect(res.body).toBe('cached /allows.txt\n');
      expect(res.headers['cache-status']).toBe('edge; hit; detail=stale-if-error');
      // The origin was asked (a revalidation), and its error did not replace the copy.
      expect(stack.origin.hits('/allows.txt')).toBe(before + 1);
    }
  });

  it("passes the origin's 5xx, status and body, when the stored response has no stale-if-error", async () => {
    stack.origin.set('/strict.txt', { status: 503, body: 'origin 503 for strict\n' });
    const res = await get('/strict.txt');
    expect(res.status).toBe(503);
    expect(res.body).toBe('origin 503 for strict\n');
    expect(res.headers['cache-status']).toMatch(/^edge; fwd=stale; fwd-status=503(;|$)/);
  });

  it("passes the origin's 5xx once the stale-if-error window is over", async () => {
    const res = await get('/short.txt');
    expect(res.status).toBe(500);
    expect(res.body).toBe('origin error for /short.txt\n');
  });

  it('never serves stale against must-revalidate', async () => {
    const res = await get('/must.txt');
    expect(res.status).toBe(500);
    expect(res.body).toBe('origin error for /must.txt\n');
  });

  it('serves the fresh answer again once the origin recovers', async () => {
    stack.origin.set('/allows.txt', { body: 'new copy\n', headers: { 'cache-control': 'max-age=60' } });
    const res = await get('/allows.txt');
    expect(res.status).toBe(200);
    expect(res.body).toBe('new copy\n');
  });
});

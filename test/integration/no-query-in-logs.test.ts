import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../lib/local/ports.ts';
import { httpGet, httpsGet } from '../harness/clients.ts';
import { type EdgeStack, errorLogProblems, PLATFORM, startEdgeStack } from '../harness/edge-stack.ts';
import { TestBed } from '../harness/testbed.ts';

// Issue 9: query strings carry tokens, and no log line carries a query string. Every request
// here has one; the failures nginx would log with the request line (or the origin URL) are
// logged by the edge as structured lines instead.
const bed = new TestBed('no-query-in-logs');
let stack: EdgeStack;
const SECRET = randomBytes(16).toString('hex');
const Q = `?token=${SECRET}`;

const get = (tenant: string, path: string) =>
  httpsGet({ port: stack.https, host: `${tenant}.${PLATFORM}`, path: `${path}${Q}` });

type Line = Record<string, unknown>;
function events(name: string): Line[] {
  return readFileSync(stack.edge.errorLog, 'utf8')
    .split('\n')
    .filter((l) => l.includes(`"event":"${name}"`))
    .map((l) => JSON.parse(l.slice(l.indexOf('{'))) as Line);
}

beforeAll(async () => {
  stack = await startEdgeStack(bed, { timeouts: { originConnectMs: 500, originReadMs: 500 } });
  await stack.seedTenant('acme');
  // Nothing listens there: the connection is refused.
  await stack.seedTenant('closed', `http://127.0.0.1:${await freePort()}`);
  stack.origin.set('/slow.txt', { body: 'too late\n', delayMs: 2000 });
  stack.origin.set('/stale.txt', {
    body: 'stale copy\n',
    headers: { 'cache-control': 'max-age=1, stale-if-error=60' },
  });
});

describe('no query string in the logs', () => {
  it('logs a refused origin connection as origin_failed, connect_or_tls_failed', async () => {
    const res = await get('closed', '/refused.txt');
    expect(res.status).toBe(502);
    const lines = events('origin_failed').filter((l) => l.tenant === 'closed');
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) {
      expect(l).toMatchObject({
        reason: 'connect_or_tls_failed',
        status: 502,
        path: '/refused.txt',
        origin: '127.0.0.1',
      });
      expect(l.connect_time).toBe('-');
      expect(l.addr).toMatch(/^127\.0\.0\.1:\d+$/);
    }
  });

  it('logs an origin that does not answer in time as origin_failed, timed_out', async () => {
    const res = await get('acme', '/slow.txt');
    expect(res.status).toBeGreaterThanOrEqual(500);
    const lines = events('origin_failed').filter((l) => l.path === '/slow.txt');
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) {
      expect(l).toMatchObject({ tenant: 'acme', reason: 'timed_out', status: 504 });
      // Connected: the read timed out.
      expect(l.connect_time).toMatch(/^\d+\.\d+$/);
    }
  });

  it("logs the fill hop's deliberate close under stale-if-error, and the stale copy is served", async () => {
    expect((await get('acme', '/stale.txt')).status).toBe(200);
    await sleep(2100);
    stack.origin.set('/stale.txt', { status: 503, body: 'origin down\n' });
    const res = await get('acme', '/stale.txt');
    expect(res.status).toBe(200);
    expect(res.body).toBe('stale copy\n');
    const lines = events('origin_failed').filter((l) => l.path === '/stale.txt');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ tenant: 'acme', reason: 'origin_5xx_stale_served', status: 503 });
  });

  it('logs a refused oversized body as body_too_large, and answers 413', async () => {
    const res = await httpsGet({
      port: stack.https,
      host: `acme.${PLATFORM}`,
      path: `/upload${Q}`,
      method: 'POST',
      body: 'x'.repeat(1024 * 1024 + 1),
    });
    expect(res.status).toBe(413);
    expect(events('body_too_large')).toEqual([
      { event: 'body_too_large', host: `acme.${PLATFORM}`, path: '/upload', limit: '1m', length: '1048577' },
    ]);
  });

  it('answers port 80 and unknown hosts as before', async () => {
    const redirect = await httpGet({ port: stack.http, host: `acme.${PLATFORM}`, path: `/page${Q}` });
    expect(redirect.status).toBe(301);
    const unknown80 = await httpGet({ port: stack.http, host: 'nobody.example.test', path: `/page${Q}` });
    expect(unknown80.status).toBe(404);
    const unknown443 = await httpsGet({ port: stack.https, host: 'nobody.example.test', path: `/page${Q}` });
    expect(unknown443.status).toBeGreaterThanOrEqual(400);
  });

  it('has the requests in the access log, and the secret in neither log', async () => {
    // The access log is buffered, flushed every second.
    await sleep(1500);
    const access = readFileSync(stack.edge.accessLog, 'utf8');
    for (const uri of ['/refused.txt?', '/slow.txt?', '/stale.txt?', '/upload?', '/page?']) {
      expect(access).toContain(`"uri":"${uri}"`);
    }
    expect(access).not.toContain(SECRET);
    const errors = readFileSync(stack.edge.errorLog, 'utf8');
    expect(errors).not.toContain(SECRET);
    expect(errors).not.toContain('token=');
    // The only error-level lines are the edge's own, structured ones.
    for (const line of errorLogProblems(stack)) expect(line).toMatch(/\{"|"event":/);
  });
});

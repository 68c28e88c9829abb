import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeCertRecord } from '../../lib/local/self-signed-cert.ts';
import { httpsGet, servedSan } from '../harness/clients.ts';
import { type EdgeStack, errorLogProblems, metric, startEdgeStack } from '../harness/edge-stack.ts';
import { TestBed } from '../harness/testbed.ts';

const bed = new TestBed('unknown-names');
let stack: EdgeStack;
let limited: EdgeStack;
const FLOOD = 1500;

beforeAll(async () => {
  stack = await startEdgeStack(bed, {
    // Small enough that a flood of unknown names would fill them many times over.
    sharedDicts: { certs: '64k', routes: '64k', negative: '64k' },
    tls: { lruSize: 16 },
    routing: { lruSize: 16 },
    limits: { connectionsPerIp: 0, requestsPerSecondPerIp: 0 },
  });
  await stack.seedTenant('acme');
  await stack.seedDomain('www.acme.test', 'acme');
  await stack.putCert('www.acme.test', await makeCertRecord(['www.acme.test']));
  stack.origin.set('/page.html', { body: 'acme page\n', headers: { 'cache-control': 'no-store' } });
  limited = await startEdgeStack(bed, { limits: { requestsPerSecondPerIp: 1, requestBurstPerIp: 2 } });
});

async function flood(n: number, concurrency = 32): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const host = `r${next++}-${Math.random().toString(36).slice(2, 10)}.flood.test`;
      const res = await httpsGet({ port: stack.https, host, path: '/' });
      expect(res.status).toBe(404);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

describe('unknown names are cheap', () => {
  it('serves a known host', async () => {
    for (let i = 0; i < 4; i++) {
      expect((await httpsGet({ port: stack.https, host: 'www.acme.test', path: '/page.html' })).status).toBe(
        200,
      );
    }
  });

  it('counts fallback handshakes and logs them sampled, not one line each', async () => {
    const before = await metric(stack, 'edge_handshakes_total{result="fallback"}');
    await flood(FLOOD);
    const after = await metric(stack, 'edge_handshakes_total{result="fallback"}');
    expect(after - before).toBeGreaterThanOrEqual(FLOOD);
    const lines = readFileSync(stack.edge.errorLog, 'utf8')
      .split('\n')
      .filter((l) => l.includes('"event":"cert_fallback"'));
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.length).toBeLessThan(FLOOD / 10);
    const counted = lines.map((l) => Number(/"count":(\d+)/.exec(l)?.[1] ?? 0)).reduce((a, b) => a + b, 0);
    expect(counted).toBeLessThanOrEqual(after);
  });

  it('still serves the known host with its certificate when Redis stops after the flood', async () => {
    await stack.redisServer.stop();
    for (let i = 0; i < 8; i++) {
      const res = await httpsGet({ port: stack.https, host: 'www.acme.test', path: '/page.html' });
      expect(res.status).toBe(200);
      expect(res.body).toBe('acme page\n');
      expect(await servedSan(stack.https, 'www.acme.test')).toBe('DNS:www.acme.test');
    }
  });

  it('logged no errors', () => {
    expect(errorLogProblems(stack)).toEqual([]);
  });
});

describe('per-address limits', () => {
  it('answers 429 above the request rate of one client address', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) {
      statuses.push((await httpsGet({ port: limited.https, host: 'nobody.example.test', path: '/' })).status);
    }
    expect(statuses).toContain(429);
    expect(statuses[0]).toBe(404);
    // nginx's own 429s are counted too (they end in a named location with the Lua header filter).
    expect(await metric(limited, 'edge_requests_total{tenant="-",status="4xx"}')).toBe(statuses.length);
  });
});

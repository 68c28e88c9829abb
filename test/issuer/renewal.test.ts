import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../lib/local/ports.ts';
import { makeCertRecord } from '../../lib/local/self-signed-cert.ts';
import { handshake } from '../harness/clients.ts';
import { TestBed } from '../harness/testbed.ts';
import { type IssuerStack, startIssuerStack } from './stack.ts';

const bed = new TestBed('renewal');
let stack: IssuerStack;
let limited: Server;
let limitedUrl: string;
let limitedHits = 0;

async function served(name: string): Promise<{ san: string; authorized: boolean }> {
  const h = await handshake(stack.edge.https, name, { ca: stack.root });
  h.socket.destroy();
  return { san: h.san, authorized: h.socket.authorized };
}

beforeAll(async () => {
  stack = await startIssuerStack(bed, { issuer: { renewal: { beforeExpiryDays: 30, jitterSeconds: 0 } } });
  await stack.edge.seedTenant('acme');
  // A CA that answers everything with 429 and Retry-After: 120.
  limited = createServer((req, res) => {
    limitedHits++;
    if (req.url === '/dir') {
      const base = `http://127.0.0.1:${(limited.address() as AddressInfo).port}`;
      res.end(
        JSON.stringify({ newNonce: `${base}/nonce`, newAccount: `${base}/acct`, newOrder: `${base}/order` }),
      );
      return;
    }
    res.writeHead(429, { 'retry-after': '120', 'content-type': 'application/problem+json' });
    res.end(JSON.stringify({ type: 'urn:ietf:params:acme:error:rateLimited', detail: 'too many' }));
  });
  await new Promise<void>((r) => limited.listen(0, '127.0.0.1', r));
  limitedUrl = `http://127.0.0.1:${(limited.address() as AddressInfo).port}/dir`;
});
afterAll(() => new Promise<void>((r) => limited.close(() => r())));

describe('renewal', () => {
  it('renews a near-expiry certificate while the old one keeps serving', async () => {
    const name = 'renew.example.com';
    await stack.edge.seedDomain(name, 'acme');
    const old = await makeCertRecord([name], 10);
    await stack.edge.putCert(name, old);
    expect((await served(name)).authorized).toBe(false); // the old, self-signed one
    expect((await stack.issuer.state(name)).state).toBe('expiring');

    const before = stack.issuer.issuer.orders;
    const pass = stack.issuer.scheduler.runOnce();
    // While the renewal runs, handshakes still get the old certificate, never the fallback.
    const during = await served(name);
    expect(during.san).toBe(`DNS:${name}`);
    const outcomes = await pass;
    expect(outcomes.get(name)).toEqual({ status: 'issued', ca: 'pebble' });
    expect(stack.issuer.issuer.orders - before).toBe(1);

    let now = await served(name);
    for (let i = 0; i < 30 && !now.authorized; i++) {
      await sleep(200); // the edge re-reads Redis after its shared-dict TTL
      now = await served(name);
    }
    expect(now.authorized).toBe(true);
    expect((await stack.issuer.state(name)).state).toBe('issued');
    // Renewed once: the next pass finds nothing due.
    expect((await stack.issuer.scheduler.runOnce()).has(name)).toBe(false);
  });

  it('does not renew a domain removed from the registry', async () => {
    const name = 'removed.example.com';
    await stack.edge.putCert(name, await makeCertRecord([name], 5));
    const before = stack.issuer.issuer.orders;
    expect((await stack.issuer.scheduler.runOnce()).has(name)).toBe(false);
    expect(stack.issuer.issuer.orders).toBe(before);
  });

  it('with the CA unreachable, the existing certificate keeps being served and the domain backs off', async () => {
    const name = 'offline.example.com';
    const port = await freePort(); // nothing listens here
    await stack.edge.seedDomain(name, 'acme');
    const old = await makeCertRecord([name], 5);
    await stack.edge.putCert(name, old);
    const offline = await stack.startIssuer(
      'offline',
      { acme: { cas: [{ name: 'down', directoryUrl: `http://127.0.0.1:${port}/dir` }] } },
      stack.edge.redisPort,
    );
    const outcome = await offline.issuer.request(name, { renewal: { currentExpiry: old.expiry } });
    expect(outcome.status).toBe('failed');
    expect((await served(name)).san).toBe(`DNS:${name}`);
    const state = await offline.state(name);
    expect(state.state).toBe('expiring');
    expect(state.reason).toMatch(/down: CA down unavailable/);
    expect(state.nextAttemptAt).toBeGreaterThan(Date.now());
  });

  it('honours 429 + Retry-After: the CA is paused fleet-wide and the next CA in the list issues', async () => {
    const name = 'fallback-ca.example.com';
    await stack.edge.seedDomain(name, 'acme');
    const svc = await stack.startIssuer(
      'two-cas',
      {
        acme: {
          cas: [
            { name: 'limited', directoryUrl: limitedUrl },
            { name: 'pebble', directoryUrl: stack.pebble.directoryUrl },
          ],
        },
      },
      stack.edge.redisPort,
    );
    expect(await svc.issuer.request(name)).toEqual({ status: 'issued', ca: 'pebble' });
    const hits = limitedHits;
    expect(hits).toBeGreaterThan(0);
    // Another domain: the paused CA is not asked again before its Retry-After.
    await stack.edge.seedDomain('second-ca.example.com', 'acme');
    expect(await svc.issuer.request('second-ca.example.com')).toEqual({ status: 'issued', ca: 'pebble' });
    expect(limitedHits).toBe(hits);
  });

  it('keeps inside the issuance budget: an exhausted window refuses the order', async () => {
    const svc = await stack.startIssuer(
      'budget',
      {
        acme: { cas: [{ name: 'tiny', directoryUrl: stack.pebble.directoryUrl }] },
        budget: { ordersPer3h: 1 },
      },
      stack.edge.redisPort,
    );
    await stack.edge.seedDomain('budget-1.example.com', 'acme');
    await stack.edge.seedDomain('budget-2.example.com', 'acme');
    expect((await svc.issuer.request('budget-1.example.com')).status).toBe('issued');
    const second = await svc.issuer.request('budget-2.example.com');
    expect(second.status).toBe('failed');
    expect(second.status === 'failed' && second.reason).toMatch(/issuance budget "orders-3h:tiny" exhausted/);
    expect(svc.issuer.orders).toBe(1);
  });
});

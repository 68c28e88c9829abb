import { X509Certificate } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../lib/local/ports.ts';
import { startRedisServer } from '../../lib/local/redis-server.ts';
import { type Handshake, handshake } from '../harness/clients.ts';
import { PLATFORM } from '../harness/edge-stack.ts';
import { TestBed } from '../harness/testbed.ts';
import { type IssuerStack, redisAt, startIssuerStack } from './stack.ts';

const bed = new TestBed('issuer');
let stack: IssuerStack;

/** A handshake that verifies the served chain against Pebble's root (the fallback fails it). */
async function verified(name: string): Promise<Handshake & { authorized: boolean; error?: string }> {
  const h = await handshake(stack.edge.https, name, { ca: stack.root });
  const out = { ...h, authorized: h.socket.authorized, error: h.socket.authorizationError?.toString() };
  h.socket.destroy();
  return out;
}

async function fallback(name: string): Promise<boolean> {
  const h = await handshake(stack.edge.https, name);
  h.socket.destroy();
  return h.san.includes('edge fallback certificate');
}

const orders = () => stack.issuer.issuer.orders;

async function issuerMetric(series: string): Promise<number> {
  const text = await (await fetch(`${stack.issuer.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : Number.NaN;
}

beforeAll(async () => {
  stack = await startIssuerStack(bed);
  await stack.edge.seedTenant('acme');
});

describe('on-demand issuance against Pebble', () => {
  it('the first handshake for a new allowed domain gets a certificate chaining to Pebble’s root', async () => {
    await stack.edge.seedDomain('shop.example.com', 'acme');
    const h = await verified('shop.example.com');
    expect(h.error).toBeUndefined();
    expect(h.authorized).toBe(true);
    expect(h.san).toBe('DNS:shop.example.com');
    expect(orders()).toBe(1);
    const state = await stack.issuer.state('shop.example.com');
    expect(state.state).toBe('issued');
    // Stored in lua-resty-auto-ssl's format, key ECDSA P-256.
    const raw = JSON.parse((await stack.edge.redis.get(stack.edge.keys.cert('shop.example.com'))) ?? '{}');
    expect(Object.keys(raw)).toEqual(['fullchain_pem', 'privkey_pem', 'cert_pem', 'expiry']);
    const cert = new X509Certificate(raw.cert_pem);
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(raw.expiry).toBe(Math.floor(Date.parse(cert.validTo) / 1000));
  });

  it('50 concurrent first handshakes cause exactly one order', async () => {
    await stack.edge.seedDomain('busy.example.com', 'acme');
    const before = orders();
    const results = await Promise.all(Array.from({ length: 50 }, () => verified('busy.example.com')));
    expect(results.filter((r) => r.authorized)).toHaveLength(50);
    expect(orders() - before).toBe(1);
    expect(await issuerMetric('edge_issuer_orders_total')).toBe(orders());
  });

  it('a disallowed domain gets the fallback and no order', async () => {
    const before = orders();
    expect(await fallback('not-registered.example.com')).toBe(true);
    // Also when someone asks the issuer directly.
    const res = await fetch(`${stack.issuer.url}/v1/certificates/not-registered.example.com`, {
      method: 'POST',
    });
    expect(res.status).toBe(409);
    expect(orders()).toBe(before);
    expect((await stack.issuer.state('not-registered.example.com')).state).toBe('none');
  });

  it('a platform subdomain is left to the wildcard: fallback until it exists, no order', async () => {
    const before = orders();
    expect(await fallback(`nowild.${PLATFORM}`)).toBe(true);
    expect(orders()).toBe(before);
  });

  it('a failing validation backs off (persisted), not a retry storm', async () => {
    const name = 'broken.example.com';
    await stack.edge.seedDomain(name, 'acme');
    // Pebble resolves the name to an address where nothing listens: HTTP-01 cannot succeed.
    await stack.dns.addA(name, ['127.0.0.2']);
    const before = orders();
    for (let i = 0; i < 15; i++) {
      expect(await fallback(name)).toBe(true);
      await sleep(100);
    }
    expect(orders() - before).toBe(1);
    const state = await stack.issuer.state(name);
    expect(state.state).toBe('failed');
    expect(state.reason).toMatch(/validation of broken\.example\.com failed/);
    expect(state.nextAttemptAt).toBeGreaterThan(Date.now() + 500_000);

    // A restarted issuer (new process, same table) keeps backing off.
    const port = await freePort();
    bed.track(await startRedisServer({ port, dir: bed.dir }));
    const { redis, keys } = redisAt(bed, port);
    await redis.set(keys.domain(name), JSON.stringify({ domain: name, tenant: 'acme' }));
    const restarted = await stack.startIssuer('restarted', {}, port);
    const outcome = await restarted.issuer.request(name);
    expect(outcome.status).toBe('refused');
    expect(restarted.issuer.orders).toBe(0);
  });

  it('two issuers (two tasks) racing for one domain take one lease and place one order', async () => {
    const name = 'race.example.com';
    const port = await freePort();
    bed.track(await startRedisServer({ port, dir: bed.dir }));
    const { redis, keys } = redisAt(bed, port);
    await redis.set(keys.domain(name), JSON.stringify({ domain: name, tenant: 'acme' }));
    await stack.edge.seedDomain(name, 'acme');
    const other = await stack.startIssuer('task-b', {}, port);
    const before = orders();
    const outcomes = await Promise.all([stack.issuer.issuer.request(name), other.issuer.request(name)]);
    expect(outcomes.map((o) => o.status).sort()).toEqual(['issued', 'waiting']);
    expect(orders() - before + other.issuer.orders).toBe(1);
  });

  it('issues the platform wildcard by DNS-01 and serves it for tenant subdomains', async () => {
    const before = orders();
    const outcome = await stack.issuer.issuer.request(`*.${PLATFORM}`);
    expect(outcome).toEqual({ status: 'issued', ca: 'pebble' });
    expect(orders() - before).toBe(1);
    let h = await verified(`acme.${PLATFORM}`);
    for (let i = 0; i < 30 && !h.authorized; i++) {
      await sleep(200); // the edge remembered the miss for missTtlSeconds
      h = await verified(`acme.${PLATFORM}`);
    }
    expect(h.authorized).toBe(true);
    expect(h.san).toContain(`DNS:*.${PLATFORM}`);
    expect(h.san).toContain(`DNS:${PLATFORM}`);
  });

  it('exposes the account thumbprint the edge answers HTTP-01 with', async () => {
    const res = await (await fetch(`${stack.issuer.url}/v1/account`)).json();
    expect(res).toEqual({ thumbprint: stack.thumbprint });
  });

  it('answers a malformed percent-escape with 400 and no stack trace', async () => {
    for (const method of ['GET', 'POST']) {
      const res = await fetch(`${stack.issuer.url}/v1/certificates/%E0%A4%A`, { method });
      expect(res.status).toBe(400);
      const text = await res.text();
      expect(text).toBe('{"error":"malformed percent-escape in path"}');
    }
  });
});

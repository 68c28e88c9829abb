import { X509Certificate } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { delegatedName, delegationTarget } from '../../lib/core/delegation.ts';
import { handshake } from '../harness/clients.ts';
import { TestBed } from '../harness/testbed.ts';
import { type IssuerStack, startIssuerStack } from './stack.ts';

const bed = new TestBed('issuer-delegated');
const ZONE = 'acme-delegation.platform.test';
let stack: IssuerStack;

/** Asks the issuer, then waits for the certificate in Redis (the order runs on after 202). */
async function issue(name: string): Promise<X509Certificate> {
  const res = await fetch(`${stack.issuer.url}/v1/certificates/${encodeURIComponent(name)}`, {
    method: 'POST',
  });
  expect([200, 202]).toContain(res.status);
  for (let i = 0; i < 300; i++) {
    const raw = await stack.edge.redis.get(stack.edge.keys.cert(name));
    if (raw) return new X509Certificate(JSON.parse(raw).cert_pem);
    const state = await stack.issuer.state(name);
    if (state.state === 'failed') throw new Error(`issuance failed: ${JSON.stringify(state)}`);
    await sleep(100);
  }
  throw new Error(`no certificate for ${name}`);
}

/** The edge's first handshake for the name, verified against Pebble's root. */
async function trusted(name: string): Promise<{ authorized: boolean; san: string }> {
  const h = await handshake(stack.edge.https, name, { ca: stack.root });
  h.socket.destroy();
  return { authorized: h.socket.authorized, san: h.san };
}

beforeAll(async () => {
  stack = await startIssuerStack(bed, { issuer: { delegation: { zone: ZONE } } });
  await stack.edge.seedTenant('acme');
});

describe('delegated DNS-01', () => {
  it('a domain that does not point at the edge gets its certificate through its _acme-challenge CNAME', async () => {
    const domain = 'moving.example.net';
    // Still at its old host (nothing answers there): HTTP-01 could not succeed.
    await stack.dns.addA(domain, ['192.0.2.10']);
    await stack.dns.setCname(delegatedName(domain), delegationTarget(domain, ZONE));
    await stack.edge.seedDomain(domain, 'acme');
    const before = stack.issuer.issuer.orders;
    const cert = await issue(domain);
    expect(cert.subjectAltName).toBe(`DNS:${domain}`);
    // Before any DNS points here, the edge already serves it, trusted.
    expect(await trusted(domain)).toEqual({ authorized: true, san: `DNS:${domain}` });
    expect(stack.issuer.issuer.orders - before).toBe(1);
    expect(await stack.issuer.issuer.delegatedTo(domain)).toBe(delegationTarget(domain, ZONE));
  });

  it('a domain entering the registry with its CNAME in place is issued without any request', async () => {
    const domain = 'early.example.net';
    await stack.dns.addA(domain, ['192.0.2.12']);
    await stack.dns.setCname(delegatedName(domain), delegationTarget(domain, ZONE));
    // What the sqs-listener does when the domain is verified: nothing asks the issuer.
    await stack.edge.seedDomain(domain, 'acme');
    let raw: string | null = null;
    for (let i = 0; i < 300 && !raw; i++) {
      raw = await stack.edge.redis.get(stack.edge.keys.cert(domain));
      if (!raw) await sleep(100);
    }
    expect(raw && new X509Certificate(JSON.parse(raw).cert_pem).subjectAltName).toBe(`DNS:${domain}`);
  });

  it('a tenant wildcard (*.<domain> with its apex) issues through the same CNAME', async () => {
    const domain = 'shop.example.org';
    await stack.dns.addA(domain, ['192.0.2.11']);
    await stack.dns.setCname(delegatedName(domain), delegationTarget(domain, ZONE));
    await stack.edge.seedDomain(domain, 'acme');
    // The domain itself is ordered as it enters the registry; the wildcard after it (both answer
    // at the same delegated name).
    await issue(domain);
    const cert = await issue(`*.${domain}`);
    expect(cert.subjectAltName?.split(', ').sort()).toEqual([`DNS:*.${domain}`, `DNS:${domain}`]);
  });

  it('the domain and its wildcard ordered at the same time both issue (one order per delegated name at a time)', async () => {
    const domain = 'both.example.org';
    await stack.dns.addA(domain, ['192.0.2.13']);
    await stack.dns.setCname(delegatedName(domain), delegationTarget(domain, ZONE));
    const before = stack.issuer.issuer.orders;
    // Entering the registry orders the domain; the wildcard is asked for at once.
    await stack.edge.seedDomain(domain, 'acme');
    const [apex, wild] = await Promise.all([
      (async () => {
        for (let i = 0; i < 300; i++) {
          const raw = await stack.edge.redis.get(stack.edge.keys.cert(domain));
          if (raw) return new X509Certificate(JSON.parse(raw).cert_pem);
          await sleep(100);
        }
        throw new Error(`no certificate for ${domain}`);
      })(),
      issue(`*.${domain}`),
    ]);
    expect(apex.subjectAltName).toBe(`DNS:${domain}`);
    expect(wild.subjectAltName?.split(', ').sort()).toEqual([`DNS:*.${domain}`, `DNS:${domain}`]);
    expect(stack.issuer.issuer.orders - before).toBe(2);
  });

  it('a tenant wildcard entry (*.<domain>) entering the registry is issued through its domain’s CNAME', async () => {
    const domain = 'wild.example.org';
    await stack.dns.setCname(delegatedName(domain), delegationTarget(domain, ZONE));
    // Only the wildcard is registered, not the domain itself.
    await stack.edge.seedDomain(`*.${domain}`, 'acme');
    let raw: string | null = null;
    for (let i = 0; i < 300 && !raw; i++) {
      raw = await stack.edge.redis.get(stack.edge.keys.cert(`*.${domain}`));
      if (!raw) await sleep(100);
    }
    const cert = raw ? new X509Certificate(JSON.parse(raw).cert_pem) : undefined;
    expect(cert?.subjectAltName?.split(', ').sort()).toEqual([`DNS:*.${domain}`, `DNS:${domain}`]);
    // Subdomains are served with it (the edge's tenant-wildcard lookup), trusted.
    expect(await trusted(`eu.${domain}`)).toEqual({
      authorized: true,
      san: `DNS:*.${domain}, DNS:${domain}`,
    });
  });

  it('without the CNAME: no wildcard, and the domain stays on HTTP-01', async () => {
    const domain = 'plain.example.org';
    await stack.edge.seedDomain(domain, 'acme');
    const before = stack.issuer.issuer.orders;
    const res = await fetch(`${stack.issuer.url}/v1/certificates/${encodeURIComponent(`*.${domain}`)}`, {
      method: 'POST',
    });
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({
      status: 'refused',
      reason: `a wildcard needs the CNAME _acme-challenge.${domain} (delegated DNS-01)`,
    });
    expect(await stack.issuer.issuer.delegatedTo(domain)).toBeUndefined();
    expect(stack.issuer.issuer.orders).toBe(before);
  });

  it('a wildcard of a domain not in the registry is refused', async () => {
    const res = await fetch(
      `${stack.issuer.url}/v1/certificates/${encodeURIComponent('*.nobody.example.org')}`,
      {
        method: 'POST',
      },
    );
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ reason: 'domain not in the registry' });
  });
});

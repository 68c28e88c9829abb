import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SignatureV4 } from '@smithy/signature-v4';
import { beforeAll, describe, expect, it } from 'vitest';
import { Sha256 } from '../../lib/control/api/sigv4.ts';
import { handshake } from '../harness/clients.ts';
import { TestBed } from '../harness/testbed.ts';
import { type QuickStart, startQuickStart } from './quick-start-process.ts';

// The "done when", on the quick start (real processes) and through the HTTP API only:
// the DNS a tenant would edit is challtestsrv, the one the quick start's resolvers ask.
const bed = new TestBed('api-onboarding');
let qs: QuickStart;
let signer: SignatureV4;
let challtestsrv: string;
let root: string;

beforeAll(async () => {
  qs = await startQuickStart(bed);
  signer = new SignatureV4({
    credentials: {
      accessKeyId: 'local',
      secretAccessKey: readFileSync(join(qs.runDir, 'api-secret'), 'utf8').trim(),
    },
    region: 'local',
    service: 'execute-api',
    sha256: Sha256,
  });
  challtestsrv = /its API at (http:\/\/\S+) sets the TXT/.exec(qs.output())?.[1] ?? '';
  expect(challtestsrv).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  root = readFileSync(join(qs.runDir, 'pebble-root.pem'), 'utf8');
});

interface Reply {
  readonly status: number;
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers, checked by the assertions.
  readonly body: any;
}

/** One SigV4-signed request to the control API, as any backend would send it. */
async function api(method: string, path: string, body?: unknown): Promise<Reply> {
  const port = qs.ports.API;
  const text = body === undefined ? '' : JSON.stringify(body);
  const signed = await signer.sign({
    method,
    protocol: 'http:',
    hostname: '127.0.0.1',
    port,
    path,
    query: {},
    headers: { host: `127.0.0.1:${port}`, 'content-type': 'application/json' },
    body: text,
  });
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: signed.headers,
    body: text || undefined,
  });
  return { status: res.status, body: await res.json() };
}

/** What the tenant does at its DNS provider. */
async function dns(path: '/set-txt' | '/set-cname', body: Record<string, string>): Promise<void> {
  const res = await fetch(`${challtestsrv}${path}`, { method: 'POST', body: JSON.stringify(body) });
  expect(res.status).toBe(200);
}

async function ordersPlaced(): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${qs.ports.ISSUER}/metrics`)).text();
  return Number(/^edge_issuer_orders_total (\d+)$/m.exec(text)?.[1]);
}

interface Instruction {
  readonly purpose: string;
  readonly type: string;
  readonly name: string;
  readonly value: string;
}
const record = (records: Instruction[], purpose: string) =>
  records.find((r) => r.purpose === purpose) as Instruction;

describe('onboarding a custom domain through the control API', () => {
  const domain = 'shop.acme-onboard.test';

  it('tenant, domain, DNS instructions, proof, active, and a trusted certificate on the first handshake', async () => {
    const tenant = await api('POST', '/tenants', {
      id: 'acme',
      origin: { type: 'http', url: `http://127.0.0.1:${qs.ports.ORIGIN}` },
    });
    expect(tenant).toMatchObject({ status: 200, body: { created: true, tenant: { id: 'acme' } } });

    const added = await api('POST', '/domains', { domain, tenant: 'acme' });
    expect(added.status).toBe(200);
    expect(added.body.domain).toMatchObject({ domain, tenant: 'acme', status: 'pending_verification' });

    // The instructions read back: ownership TXT, the optional challenge CNAME, routing.
    const shown = await api('GET', `/domains/${domain}`);
    expect(shown.body.status).toBe('pending_verification');
    const ownership = record(shown.body.records, 'ownership');
    const challenge = record(shown.body.records, 'challenge');
    expect(ownership).toMatchObject({ type: 'TXT', name: `_edge-verify.${domain}`, satisfied: false });
    expect(challenge).toMatchObject({ type: 'CNAME', name: `_acme-challenge.${domain}`, satisfied: false });
    expect(ownership.value).toBe(record(added.body.records, 'ownership').value);

    await dns('/set-txt', { host: `${ownership.name}.`, value: ownership.value });
    await dns('/set-cname', { host: `${challenge.name}.`, target: `${challenge.value}.` });
    const verified = await api('POST', `/domains/${domain}/verify`);
    expect(verified).toMatchObject({ status: 200, body: { status: 'verified' } });

    // Verified → the edge's registry → the issuer orders by delegated DNS-01 → active.
    const seen = ['pending_verification', 'verified'];
    let current = await api('GET', `/domains/${domain}`);
    for (let i = 0; i < 600 && current.body.status !== 'active'; i++) {
      if (current.body.status === 'failed') throw new Error(`failed: ${current.body.reason}`);
      if (seen.at(-1) !== current.body.status) seen.push(current.body.status);
      await sleep(100);
      current = await api('GET', `/domains/${domain}`);
    }
    seen.push(current.body.status);
    expect(seen.at(-1)).toBe('active');
    expect(current.body.certificate).toMatchObject({ state: 'issued' });
    expect(current.body.records.every((r: { satisfied: boolean }) => r.satisfied)).toBe(true);

    const before = await ordersPlaced();
    const h = await handshake(qs.ports.HTTPS, domain, { ca: root });
    h.socket.destroy();
    expect({ authorized: h.socket.authorized, san: h.san }).toEqual({
      authorized: true,
      san: `DNS:${domain}`,
    });
    expect(await ordersPlaced()).toBe(before);
  });

  it('refuses the same domain for a second tenant', async () => {
    await api('POST', '/tenants', {
      id: 'globex',
      origin: { type: 'http', url: `http://127.0.0.1:${qs.ports.ORIGIN}` },
    });
    const r = await api('POST', '/domains', { domain, tenant: 'globex' });
    expect(r).toEqual({
      status: 409,
      body: {
        error: { kind: 'conflict', message: `domain ${domain} belongs to tenant "acme": remove it first` },
      },
    });
    expect((await api('GET', `/domains/${domain}`)).body).toMatchObject({ tenant: 'acme', status: 'active' });
  });

  it('never serves or issues for an unverified domain, even with its challenge CNAME in place', async () => {
    const unproven = 'www.unproven-onboard.test';
    const added = await api('POST', '/domains', { domain: unproven, tenant: 'globex' });
    expect(added.body.domain.status).toBe('pending_verification');
    const challenge = record(added.body.records, 'challenge');
    await dns('/set-cname', { host: `${challenge.name}.`, target: `${challenge.value}.` });
    const before = await ordersPlaced();
    expect((await api('POST', `/domains/${unproven}/verify`)).body.status).toBe('pending_verification');

    const h = await handshake(qs.ports.HTTPS, unproven, { ca: root });
    h.socket.destroy();
    expect(h.socket.authorized).toBe(false);
    expect(h.san).not.toContain(unproven);
    // Long enough for an order the registry watch or the handshake would have started.
    await sleep(2000);
    expect(await ordersPlaced()).toBe(before);
    const state = await (
      await fetch(`http://127.0.0.1:${qs.ports.ISSUER}/v1/certificates/${encodeURIComponent(unproven)}`)
    ).json();
    expect(state).toMatchObject({ state: 'none' });
    expect((await api('GET', `/domains/${unproven}`)).body).toMatchObject({
      status: 'pending_verification',
      certificate: { state: 'none' },
    });
  });

  it('stops cleanly', async () => {
    expect(await qs.stop()).toBe(0);
  });
});

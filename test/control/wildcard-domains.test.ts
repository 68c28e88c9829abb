import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TableCertificateReader } from '../../lib/control/certificates.ts';
import { parseCommandLine } from '../../lib/control/cli/commands.ts';
import { ControlPlane } from '../../lib/control/control-plane.ts';
import { ValidationError } from '../../lib/control/errors.ts';
import { RedisStreamsBus } from '../../lib/core/bus/redis/streams-bus.ts';
import { delegationTarget } from '../../lib/core/delegation.ts';
import { makeCertRecord } from '../../lib/local/self-signed-cert.ts';
import { TestBed } from '../harness/testbed.ts';
import { FakeResolver } from './fake-resolver.ts';
import { controlStack } from './stack.ts';

// Tenant wildcards (issue 11): *.<domain> entries through the control plane. The ownership proof
// and the delegated challenge CNAME are at the base domain; a wildcard is issued only by delegated
// DNS-01, so the instructions require the CNAME and the status says when it is missing.
const bed = new TestBed('control-wildcard');
const STREAM = 'wildcard:events';
const stack = controlStack(bed, { tableName: 'edge-wildcard', streams: [STREAM] });
const ZONE = 'acme-delegation.platform.example';
const EDGE = { cname: 'edge.platform.example', addresses: ['203.0.113.10'] };
const WILD = '*.shop.example';
const TARGET = delegationTarget('shop.example', ZONE);

const resolver = new FakeResolver({ '*.shop.example': { cname: 'edge.platform.example' } });
let bus: RedisStreamsBus;
let cp: ControlPlane;

function plane(challengeZone?: string): ControlPlane {
  return new ControlPlane({
    store: stack.store,
    bus,
    resolver,
    certificates: new TableCertificateReader(stack.client, stack.tableName),
    edge: EDGE,
    ...(challengeZone ? { challengeZone } : {}),
  });
}

beforeAll(async () => {
  bus = new RedisStreamsBus({ redis: { port: stack.redisPort }, stream: STREAM, group: 'wildcard-test' });
  cp = plane(ZONE);
  await cp.tenants.add('shop', { type: 'http', url: 'http://origin.shop.example' });
});
afterAll(() => bus.close({ keepSubscription: true }));

const message = async (p: Promise<unknown>) =>
  p.then(
    () => 'accepted',
    (e: Error) => `${e.name}: ${e.message}`,
  );

describe('wildcard domain entries', () => {
  it('refuses malformed wildcards and wildcards over a public suffix', async () => {
    for (const bad of [
      '*.co.uk',
      '*.github.io',
      '*.com',
      '**.shop.example',
      '*shop.example',
      'a.*.shop.example',
    ]) {
      await expect(cp.domains.add(bad, 'shop')).rejects.toThrow(ValidationError);
    }
    expect(await message(cp.domains.add('*.co.uk', 'shop'))).toBe(
      'ValidationError: invalid domain "*.co.uk": co.uk is a public suffix; a wildcard goes over a name registered under it',
    );
    expect(await message(cp.domains.add('a.*.shop.example', 'shop'))).toMatch(
      /a lowercase DNS name with at least two labels/,
    );
  });

  it('refuses a wildcard where no challenge zone (delegated DNS-01) is configured', async () => {
    expect(await message(plane().domains.add(WILD, 'shop'))).toMatch(
      /a wildcard \(\*\.shop\.example\) is issued only by delegated DNS-01, and no challenge zone is configured/,
    );
    expect(await stack.store.getDomain(WILD)).toBeUndefined();
  });

  it('adds *.<domain>: instructions at the base domain, the challenge CNAME required', async () => {
    const r = await cp.domains.add('*.Shop.Example.', 'shop');
    expect(r.domain).toMatchObject({ domain: WILD, tenant: 'shop', status: 'pending_verification' });
    const token = (await stack.store.getDomain(WILD))?.verifyToken;
    expect(r.records).toEqual([
      {
        purpose: 'ownership',
        type: 'TXT',
        name: '_edge-verify.shop.example',
        value: token,
        satisfied: false,
        note: 'or serve the value at http://shop.example/.well-known/edge-verify.txt; keep it: it is re-checked (a wildcard is proved on shop.example; a TXT name may hold several values)',
      },
      {
        purpose: 'challenge',
        type: 'CNAME',
        name: '_acme-challenge.shop.example',
        value: TARGET,
        satisfied: false,
        note: "required: a wildcard is issued only by delegated DNS-01 (at shop.example's _acme-challenge name)",
      },
      { purpose: 'routing', type: 'CNAME', name: WILD, value: 'edge.platform.example', satisfied: true },
    ]);
    expect((await stack.events(STREAM)).at(-1)).toMatchObject({
      type: 'domain.status',
      payload: { domain: WILD, tenant: 'shop', status: 'pending_verification' },
    });
  });

  it('is verified by the TXT record at the base domain, next to a token of the base itself', async () => {
    const token = (await stack.store.getDomain(WILD))?.verifyToken as string;
    resolver.set('_edge-verify.shop.example', { txt: ['edge-verify=someone-elses-token', token] });
    const v = await cp.domains.verify(WILD);
    expect(v).toMatchObject({ domain: WILD, status: 'verified', verifiedAt: expect.any(Number) });
    // The edge reads *.<parent> from the registry: domain.upserted carries the wildcard name.
    expect((await stack.events(STREAM)).at(-1)).toMatchObject({
      type: 'domain.upserted',
      payload: { domain: WILD, tenant: 'shop' },
    });
  });

  it('without the challenge CNAME the status says why nothing is issued; with it the reason goes', async () => {
    const waiting = await cp.domains.show(WILD);
    expect(waiting).toMatchObject({
      status: 'verified',
      reason: `a wildcard is issued only by delegated DNS-01: waiting for the CNAME _acme-challenge.shop.example ${TARGET}`,
    });
    resolver.set('_acme-challenge.shop.example', { cname: TARGET });
    const ready = await cp.domains.show(WILD);
    expect(ready.status).toBe('verified');
    expect(ready.reason).toBeUndefined();
    expect(ready.records.find((r) => r.purpose === 'challenge')?.satisfied).toBe(true);
  });

  it('goes active when the wildcard certificate is in the table; list, remove', async () => {
    const record = await makeCertRecord([WILD, 'shop.example'], 90);
    await stack.store.putCert(WILD, record);
    await stack.issuance.issued(WILD, record.expiry, 'test-ca');
    expect((await cp.domains.show(WILD)).status).toBe('active');
    expect((await cp.domains.list({ tenant: 'shop' })).map((d) => d.domain)).toEqual([WILD]);
    const removed = await cp.domains.remove(WILD);
    expect(removed).toMatchObject({ domain: WILD, tenant: 'shop' });
    expect((await stack.events(STREAM)).at(-1)).toMatchObject({
      type: 'domain.removed',
      payload: { domain: WILD },
    });
  });

  it('the CLI accepts a wildcard and refuses a malformed one before reading any configuration', () => {
    expect(parseCommandLine(['domain', 'add', WILD, '--tenant', 'shop']).command).toMatchObject({
      name: 'domain add',
      domain: WILD,
    });
    expect(() => parseCommandLine(['domain', 'show', '*.*.shop.example'])).toThrow(
      /a wildcard is one leading "\*\." label over a domain/,
    );
  });
});

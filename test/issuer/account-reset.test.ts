import { beforeAll, describe, expect, it } from 'vitest';
import { handshake } from '../harness/clients.ts';
import { TestBed } from '../harness/testbed.ts';
import { type IssuerStack, startIssuerStack } from './stack.ts';

// Issue 10, item 5: the CA forgets the account (Pebble killed and restarted with the same command
// line): the issuer registers the account again and the order succeeds in the same attempt,
// without a failure or a backoff charged to the domain.
const bed = new TestBed('issuer-account-reset');
let stack: IssuerStack;

async function verifiedSan(name: string, root: string): Promise<{ san: string; error?: string }> {
  const h = await handshake(stack.edge.https, name, { ca: root });
  const out = { san: h.san, error: h.socket.authorizationError?.toString() };
  h.socket.destroy();
  return out;
}

beforeAll(async () => {
  stack = await startIssuerStack(bed);
  await stack.edge.seedTenant('acme');
});

describe('the CA forgot the ACME account', () => {
  it('re-registers it and issues in the same attempt, with no failure and no backoff for the domain', async () => {
    await stack.edge.seedDomain('before.example.com', 'acme');
    expect(await verifiedSan('before.example.com', stack.root)).toEqual({ san: 'DNS:before.example.com' });
    const ca = stack.issuer.cas[0];
    expect(ca?.accountResets).toBe(0);

    bed.track(await stack.pebble.restart());
    const root = await stack.pebble.root();
    expect(root).not.toBe(stack.root);

    await stack.edge.seedDomain('after.example.com', 'acme');
    expect(await verifiedSan('after.example.com', root)).toEqual({ san: 'DNS:after.example.com' });
    expect(ca?.accountResets).toBe(1);
    const state = await stack.issuer.state('after.example.com');
    expect(state.state).toBe('issued');
    expect(stack.issuer.issuer.stats.failed).toBe(0);
    const record = await stack.issuer.issuance.get('after.example.com');
    expect(record?.failures ?? 0).toBe(0);
    expect(record?.nextAttemptAt ?? 0).toBeLessThanOrEqual(Date.now());
  });

  it('keeps using the re-registered account: the next order needs no reset', async () => {
    await stack.edge.seedDomain('later.example.com', 'acme');
    expect((await verifiedSan('later.example.com', await stack.pebble.root())).san).toBe(
      'DNS:later.example.com',
    );
    expect(stack.issuer.cas[0]?.accountResets).toBe(1);
  });
});

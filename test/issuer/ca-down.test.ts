import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { handshake } from '../harness/clients.ts';
import { errorLogProblems } from '../harness/edge-stack.ts';
import { TestBed } from '../harness/testbed.ts';
import { type IssuerStack, startIssuerStack } from './stack.ts';

// Issue 10, item 4: with the CA down, issuance fails within milliseconds; the handshake that
// asked learns it from the issuer's answer and gets the fallback certificate at once, instead of
// waiting the whole tls.issuerWaitMs; other handshakes for the name get it at once too.
const bed = new TestBed('issuer-ca-down');
let stack: IssuerStack;
const WAIT_MS = 5000;

async function timedFallback(name: string): Promise<{ fallback: boolean; ms: number }> {
  const started = Date.now();
  const h = await handshake(stack.edge.https, name);
  h.socket.destroy();
  return { fallback: h.san.includes('edge fallback certificate'), ms: Date.now() - started };
}

beforeAll(async () => {
  stack = await startIssuerStack(bed, { edge: { tls: { issuerWaitMs: WAIT_MS } } });
  await stack.edge.seedTenant('acme');
  // The CA goes away: every order now fails on the connection.
  await stack.pebble.pebble.stop();
});

describe('a failed issuance reaches the waiting handshake at once', () => {
  it('the first handshake for an allowed domain gets the fallback well before the issuer wait', async () => {
    await stack.edge.seedDomain('down.example.com', 'acme');
    const first = await timedFallback('down.example.com');
    expect(first.fallback).toBe(true);
    // Generous: the point is "not the whole wait", not a tight timing.
    expect(first.ms).toBeLessThan(WAIT_MS / 2);
    const state = await stack.issuer.state('down.example.com');
    expect(state.state).toBe('failed');
    // The edge heard the failure from the issuer's answer (not from a timeout).
    const log = readFileSync(stack.edge.edge.errorLog, 'utf8');
    expect(log).toContain('"event":"issuer_refused"');
    expect(log).not.toContain('"event":"issuer_wait_timeout"');
  });

  it('handshakes for that name in any worker get the fallback at once, without asking again', async () => {
    const requests = () =>
      readFileSync(join(bed.dir, 'issuer-main.log'), 'utf8')
        .split('\n')
        .filter((l) => l.includes('down.example.com')).length;
    const before = requests();
    const results = await Promise.all(Array.from({ length: 8 }, () => timedFallback('down.example.com')));
    for (const r of results) {
      expect(r.fallback).toBe(true);
      expect(r.ms).toBeLessThan(WAIT_MS / 2);
    }
    expect(requests()).toBe(before);
  });

  it('logged no errors in the edge', () => {
    expect(errorLogProblems(stack.edge)).toEqual([]);
  });
});

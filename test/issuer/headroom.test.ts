import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { IssuerService } from '../../lib/sidecars/issuer/service.ts';
import { TestBed } from '../harness/testbed.ts';
import { type IssuerStack, startIssuerStack } from './stack.ts';

// Issue 10, item 9: Let's Encrypt budget headroom you can see. Real orders against Pebble use up
// a small budget; the renewal pass reads what is left from the table, shows it on /metrics and
// logs `budget_low` (the CloudWatch alarm's line) for each limit at or below the low share.
const bed = new TestBed('issuer-headroom');
let stack: IssuerStack;
let svc: IssuerService;

async function metrics(): Promise<string> {
  return (await fetch(`${svc.url}/metrics`)).text();
}
function value(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : Number.NaN;
}

beforeAll(async () => {
  stack = await startIssuerStack(bed);
  await stack.edge.seedTenant('acme');
  svc = await stack.startIssuer(
    'headroom',
    {
      acme: { cas: [{ name: 'hr', directoryUrl: stack.pebble.directoryUrl }] },
      budget: { ordersPer3h: 5, certsPerDomainPerWeek: 4, lowHeadroomPercent: 50 },
      renewal: { beforeExpiryDays: 30, jitterSeconds: 0 },
    },
    stack.edge.redisPort,
  );
  for (const name of ['one.hr-example.com', 'two.hr-example.com', 'www.hr-other.com']) {
    await stack.edge.seedDomain(name, 'acme');
    expect(await svc.issuer.request(name)).toEqual({ status: 'issued', ca: 'hr' });
  }
});

describe("Let's Encrypt budget headroom", () => {
  it('is read after the renewal pass and shown on /metrics', async () => {
    await svc.scheduler.runOnce();
    const text = await metrics();
    expect(value(text, 'edge_issuer_budget_orders_left{ca="hr",limit="5"}')).toBe(2);
    // hr-example.com took two of its four certificates; hr-other.com one.
    expect(value(text, 'edge_issuer_budget_certs_per_domain_left_min{ca="hr",limit="4"}')).toBe(2);
    expect(
      value(text, 'edge_issuer_budget_certs_per_domain_left{ca="hr",domain="hr-example.com",limit="4"}'),
    ).toBe(2);
    // Per-domain series only where headroom is low.
    expect(text).not.toContain('domain="hr-other.com"');
    expect(value(text, 'edge_issuer_budget_low')).toBe(2);
  });

  it('logs budget_low for each limit at or below the low share', () => {
    const lines = readFileSync(join(bed.dir, 'issuer-headroom.log'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const low = lines.filter((l) => l.event === 'budget_low');
    expect(low.map(({ ca, limit, subject, left, of }) => ({ ca, limit, subject, left, of }))).toEqual([
      { ca: 'hr', limit: 'orders-3h', subject: 'hr', left: 2, of: 5 },
      { ca: 'hr', limit: 'certs-domain-week', subject: 'hr-example.com', left: 2, of: 4 },
    ]);
  });
});

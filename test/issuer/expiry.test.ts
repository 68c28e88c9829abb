import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../lib/local/ports.ts';
import { makeCertRecord } from '../../lib/local/self-signed-cert.ts';
import type { IssuerService } from '../../lib/sidecars/issuer/service.ts';
import { TestBed } from '../harness/testbed.ts';
import { type IssuerStack, startIssuerStack } from './stack.ts';

// Issue 10, item 9: certificate expiry you can see. With the CA unreachable, renewals fail; the
// issuer reports certificates close to expiry with no renewal in progress, expired ones still
// served and the failed renewals, on /metrics and as log lines the CloudWatch alarms count.
const bed = new TestBed('issuer-expiry');
let stack: IssuerStack;
let svc: IssuerService;

async function metric(series: string): Promise<number> {
  const text = await (await fetch(`${svc.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : Number.NaN;
}

beforeAll(async () => {
  stack = await startIssuerStack(bed);
  await stack.edge.seedTenant('acme');
  const down = await freePort(); // nothing listens here
  svc = await stack.startIssuer(
    'expiry',
    {
      acme: { cas: [{ name: 'down', directoryUrl: `http://127.0.0.1:${down}/dir` }] },
      renewal: { beforeExpiryDays: 30, jitterSeconds: 0 },
    },
    stack.edge.redisPort,
  );
  for (const name of ['soon.example.com', 'late.example.com', 'fine.example.com']) {
    await stack.edge.seedDomain(name, 'acme');
  }
  await stack.edge.putCert('soon.example.com', await makeCertRecord(['soon.example.com'], 5));
  const late = await makeCertRecord(['late.example.com'], 1);
  await stack.edge.putCert('late.example.com', { ...late, expiry: Math.floor(Date.now() / 1000) - 3600 });
  await stack.edge.putCert('fine.example.com', await makeCertRecord(['fine.example.com'], 60));
});

describe('certificate expiry you can see', () => {
  it('counts certificates close to expiry without a renewal, expired ones still served, and failed renewals', async () => {
    const outcomes = await svc.scheduler.runOnce();
    expect(outcomes.get('soon.example.com')?.status).toBe('failed');
    expect(outcomes.has('fine.example.com')).toBe(false);
    expect(svc.scheduler.expiry).toMatchObject({
      certificates: 3,
      expiring: 1,
      expired: 1,
      renewalFailures: 2,
      renewed: 0,
      renewalAttempts: 2,
      failureRate: { ratio: 1, attempts: 2, failures: 2, windowSeconds: 21_600 },
      alertBeforeDays: 14,
    });
  });

  it('shows them on /metrics', async () => {
    expect(await metric('edge_issuer_certificates')).toBe(3);
    expect(await metric('edge_issuer_certificates_expiring{within_days="14"}')).toBe(1);
    expect(await metric('edge_issuer_certificates_expired')).toBe(1);
    expect(await metric('edge_issuer_renewals_total{outcome="failed"}')).toBe(2);
    expect(await metric('edge_issuer_renewal_attempts_total')).toBe(2);
    expect(await metric('edge_issuer_renewal_failure_ratio{window_seconds="21600"}')).toBe(1);
    expect(await metric('edge_issuer_renewal_last_pass_seconds')).toBeGreaterThan(Date.now() / 1000 - 60);
  });

  it('logs one structured line per finding for the alarms to count', () => {
    const lines = readFileSync(join(bed.dir, 'issuer-expiry.log'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { event?: string; domain?: string; daysLeft?: number });
    const of = (event: string) => lines.filter((l) => l.event === event).map((l) => l.domain);
    expect(of('cert_expiring')).toEqual(['soon.example.com']);
    expect(of('cert_expired')).toEqual(['late.example.com']);
    expect(of('renewal_failed').sort()).toEqual(['late.example.com', 'soon.example.com']);
    // Each tried order, failed or not, is the failure rate's denominator.
    expect(of('renewal_attempt').sort()).toEqual(['late.example.com', 'soon.example.com']);
    expect(lines.find((l) => l.event === 'cert_expiring')?.daysLeft).toBe(4);
  });
});

import { beforeAll, describe, expect, it } from 'vitest';
import { makeCertRecord } from '../../lib/local/self-signed-cert.ts';
import { httpGet, httpsGet } from '../harness/clients.ts';
import { type EdgeStack, errorLogProblems, PLATFORM, startEdgeStack } from '../harness/edge-stack.ts';
import { TestBed } from '../harness/testbed.ts';

// The Route53 health check requests https://edge-health-<region>.<platform>/ with SNI and
// matches "edge-health ok <region>" in the body (lib/infra/geo-dns-records.ts).
const bed = new TestBed('canary');
const REGION = 'eu-west-1';
const CANARY = `edge-health-${REGION}.${PLATFORM}`;
let stack: EdgeStack;

const canary = (host = CANARY) => httpsGet({ port: stack.https, host });
const forget = (domain: string) =>
  httpGet({
    port: stack.control,
    path: '/certs/forget',
    method: 'POST',
    headers: { authorization: `Bearer ${stack.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ domain }),
  });

beforeAll(async () => {
  stack = await startEdgeStack(bed, { region: REGION, tls: { missTtlSeconds: 1 } });
});

describe('region canary', () => {
  it('fails while the region has no certificate for the name (it would serve the fallback)', async () => {
    const res = await canary();
    expect(res.status).toBe(503);
    expect(res.body).toBe(`edge-health failing ${REGION}: no certificate for ${CANARY}\n`);
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('answers the fixed body once the platform wildcard is there and Redis answers', async () => {
    await stack.putCert(`*.${PLATFORM}`, await makeCertRecord([`*.${PLATFORM}`, PLATFORM]));
    await expect
      .poll(async () => (await canary()).body, { timeout: 5000 })
      .toBe(`edge-health ok ${REGION}\n`);
    expect((await canary()).status).toBe(200);
  });

  it("is only this region's canary: another region's name is an unknown tenant here", async () => {
    const res = await canary(`edge-health-us-east-1.${PLATFORM}`);
    expect(res.status).toBe(404);
    expect(res.body).not.toContain('edge-health ok');
  });

  it('fails when an expired certificate is all the region has', async () => {
    const wildcard = `*.${PLATFORM}`;
    const record = await makeCertRecord([wildcard, PLATFORM]);
    // The record's expiry is what the edge reads; the PEM itself does not matter here.
    await stack.putCert(wildcard, { ...record, expiry: Math.floor(Date.now() / 1000) - 60 });
    await forget(wildcard);
    const res = await canary();
    expect(res.status).toBe(503);
    expect(res.body).toBe(`edge-health failing ${REGION}: certificate for ${CANARY} expired\n`);
    await stack.putCert(wildcard, await makeCertRecord([wildcard, PLATFORM]));
    await forget(wildcard);
    expect((await canary()).status).toBe(200);
  });

  it('logs no error while healthy', () => {
    expect(errorLogProblems(stack)).toEqual([]);
  });

  it('fails when Redis is down, even with the certificate cached', async () => {
    await stack.redisServer.kill();
    const res = await canary();
    expect(res.status).toBe(503);
    expect(res.body).toBe(`edge-health failing ${REGION}: routing store unavailable\n`);
    await stack.restartRedis();
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsGet } from '../harness/clients.ts';
import { type EdgeStack, errorLogProblems, PLATFORM, startEdgeStack } from '../harness/edge-stack.ts';
import { PermissiveOrigin } from '../harness/permissive-origin.ts';
import { TestBed } from '../harness/testbed.ts';

// Two tenants on one origin that keeps them apart by path only, and decodes paths permissively.
const bed = new TestBed('path-escape');
let stack: EdgeStack;
const origin = new PermissiveOrigin();

beforeAll(async () => {
  stack = await startEdgeStack(bed);
  await origin.start();
  await stack.seedTenant('ta', `http://127.0.0.1:${origin.port}/ta`);
  await stack.seedTenant('tb', `http://127.0.0.1:${origin.port}/tb`);
  await stack.seedDomain('a.tenant.test', 'ta');
  origin.put('/ta/index.html', 'tenant a\n');
  origin.put('/ta/100%.html', 'tenant a percent\n');
  origin.put('/ta/a b.html', 'tenant a space\n');
  origin.put('/tb/secret.txt', 'tenant b secret\n');
});
afterAll(() => origin.stop());

const get = (host: string, path: string) => httpsGet({ port: stack.https, host, path });

const probes = [
  '/..\\tb/secret.txt',
  '/..%5ctb/secret.txt',
  '/..%5Ctb/secret.txt',
  '/..%2ftb/secret.txt',
  '/%2e%2e/tb/secret.txt',
  '/.%2E/tb/secret.txt',
  '/%252e%252e/tb/secret.txt',
  '/..%252ftb/secret.txt',
  '/..%255ctb/secret.txt',
  '/%25252e%25252e%25252ftb/secret.txt',
  '/..;/tb/secret.txt',
  '/x/..%2f..%2ftb/secret.txt',
  '/%c0%ae%c0%ae/tb/secret.txt',
];

describe('paths that cannot leave the tenant base', () => {
  it('serves ordinary paths, percent-escapes included', async () => {
    expect((await get('a.tenant.test', '/index.html')).body).toBe('tenant a\n');
    expect((await get('a.tenant.test', '/100%25.html')).body).toBe('tenant a percent\n');
    expect((await get('a.tenant.test', '/a%20b.html')).body).toBe('tenant a space\n');
  });

  it.each(probes)('refuses %s on a custom domain with 400', async (path) => {
    const res = await get('a.tenant.test', path);
    expect(res.status).toBe(400);
    expect(res.body).not.toContain('secret');
  });

  it.each(probes)('refuses %s on a platform subdomain with 400', async (path) => {
    const res = await get(`ta.${PLATFORM}`, path);
    expect(res.status).toBe(400);
  });

  it.each(probes)('refuses /ta%s in the directory form with 400', async (path) => {
    const res = await get(PLATFORM, `/ta${path}`);
    expect(res.status).toBe(400);
    expect(res.body).not.toContain('secret');
  });

  it('never let the origin see a path outside the tenant it was asked for', () => {
    expect(origin.seen.length).toBeGreaterThan(0);
    expect(origin.seen.filter((p) => p.startsWith('/tb/'))).toEqual([]);
  });

  it('logged no errors', () => {
    expect(errorLogProblems(stack)).toEqual([]);
  });
});

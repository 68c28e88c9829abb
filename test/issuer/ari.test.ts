import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CertRecord } from '../../lib/core/redis-format.ts';
import { AriClient, ariCertId } from '../../lib/sidecars/issuer/ari.ts';
import type { Outcome, RequestOptions } from '../../lib/sidecars/issuer/issuer.ts';
import { RenewalScheduler } from '../../lib/sidecars/issuer/renewal.ts';
import { TestBed } from '../harness/testbed.ts';

const run = promisify(execFile);
const bed = new TestBed('ari');

/** RFC 9773 §4.1's example: AKI 69:88:5B:…:C8:D4 and serial 0x87654321 give this id. */
const RFC_ID = 'aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE';
let certPem: string;

async function exampleCertificate(): Promise<string> {
  const d = bed.dir;
  const ext = join(d, 'ext.cnf');
  await writeFile(
    ext,
    [
      '[ca]',
      'subjectKeyIdentifier=69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4',
      'basicConstraints=critical,CA:true',
      '[leaf]',
      'authorityKeyIdentifier=keyid:always',
      'subjectAltName=DNS:ari.example.com',
      '',
    ].join('\n'),
  );
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await run('openssl', [
    'req',
    '-x509',
    ...ec,
    '-subj',
    '/CN=ARI test CA',
    '-keyout',
    join(d, 'ca.key'),
    '-out',
    join(d, 'ca.crt'),
    '-days',
    '30',
    '-extensions',
    'ca',
    '-config',
    ext,
  ]).catch(async () => {
    // Older openssl wants a [req] section in -config; fall back to -addext.
    await run('openssl', [
      'req',
      '-x509',
      ...ec,
      '-subj',
      '/CN=ARI test CA',
      '-keyout',
      join(d, 'ca.key'),
      '-out',
      join(d, 'ca.crt'),
      '-days',
      '30',
      '-addext',
      'subjectKeyIdentifier=69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4',
    ]);
  });
  await run('openssl', [
    'req',
    '-new',
    ...ec,
    '-subj',
    '/CN=ari.example.com',
    '-keyout',
    join(d, 'leaf.key'),
    '-out',
    join(d, 'leaf.csr'),
  ]);
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    join(d, 'leaf.csr'),
    '-CA',
    join(d, 'ca.crt'),
    '-CAkey',
    join(d, 'ca.key'),
    '-set_serial',
    '0x87654321',
    '-days',
    '10',
    '-extfile',
    ext,
    '-extensions',
    'leaf',
    '-out',
    join(d, 'leaf.crt'),
  ]);
  return readFile(join(d, 'leaf.crt'), 'utf8');
}

let server: Server;
let base: string;
const windows = new Map<string, { start: string; end: string }>();
const asked: string[] = [];

beforeAll(async () => {
  certPem = await exampleCertificate();
  server = createServer((req, res) => {
    const url = req.url ?? '/';
    if (url === '/dir') {
      res.end(JSON.stringify({ newOrder: `${base}/new-order`, renewalInfo: `${base}/renewal-info` }));
      return;
    }
    const m = /^\/renewal-info\/(.+)$/.exec(url);
    const w = m?.[1] ? windows.get(m[1]) : undefined;
    if (!m?.[1] || !w) {
      res.statusCode = 404;
      res.end();
      return;
    }
    asked.push(m[1]);
    res.setHeader('retry-after', '21600');
    res.end(JSON.stringify({ suggestedWindow: w, explanationURL: 'https://ca.example/why' }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

function scheduler(requests: { domain: string; opts: RequestOptions }[], random = () => 0.5) {
  const cert: CertRecord = {
    fullchain_pem: certPem,
    cert_pem: certPem,
    privkey_pem: '(no key: the scheduler never reads it)',
    expiry: Math.floor(Date.now() / 1000) + 10 * 86400,
  };
  return new RenewalScheduler(
    {
      issuer: {
        wildcardName: '*.platform.test',
        request: async (domain: string, opts: RequestOptions = {}): Promise<Outcome> => {
          requests.push({ domain, opts });
          return { status: 'issued', ca: 'test' };
        },
      },
      certs: { domains: async () => ['ari.example.com'], get: async () => cert, allowed: async () => true },
      ari: new AriClient(),
      log: pino({ level: 'silent' }),
      random,
    },
    { beforeExpiryDays: 30, jitterSeconds: 0, intervalSeconds: 3600, ariDirectoryUrl: `${base}/dir` },
  );
}

describe('ARI (RFC 9773)', () => {
  it('builds the certificate id from the AKI keyIdentifier and the serial’s DER bytes', () => {
    expect(ariCertId(certPem)).toBe(RFC_ID);
  });

  it('reads the suggested window and Retry-After from the directory’s renewalInfo', async () => {
    const now = Date.now();
    windows.set(RFC_ID, { start: '2031-01-01T00:00:00Z', end: '2031-01-03T00:00:00Z' });
    const w = await new AriClient().renewalWindow(`${base}/dir`, certPem, now);
    expect(w).toEqual({
      start: Date.parse('2031-01-01T00:00:00Z'),
      end: Date.parse('2031-01-03T00:00:00Z'),
      explanationUrl: 'https://ca.example/why',
      nextCheckAt: now + 21_600_000,
    });
  });

  it('follows the CA’s window over the 30-day rule: a future window means no renewal yet', async () => {
    windows.set(RFC_ID, { start: '2031-01-01T00:00:00Z', end: '2031-01-03T00:00:00Z' });
    const requests: { domain: string; opts: RequestOptions }[] = [];
    const s = scheduler(requests);
    // The certificate expires in 10 days, so without ARI it would be renewed now.
    expect((await s.runOnce()).size).toBe(0);
    expect(requests).toHaveLength(0);
    const plan = await s.plan('ari.example.com', {
      fullchain_pem: certPem,
      cert_pem: certPem,
      privkey_pem: '',
      expiry: 1,
    });
    expect(plan.renewAt).toBe(Date.parse('2031-01-02T00:00:00Z'));
  });

  it('renews inside an open window, naming the replaced certificate', async () => {
    windows.set(RFC_ID, { start: '2020-01-01T00:00:00Z', end: '2020-01-02T00:00:00Z' });
    const requests: { domain: string; opts: RequestOptions }[] = [];
    const outcomes = await scheduler(requests).runOnce();
    expect(outcomes.get('ari.example.com')).toEqual({ status: 'issued', ca: 'test' });
    expect(requests).toHaveLength(1);
    expect(requests[0]?.opts.renewal?.replaces).toBe(RFC_ID);
  });

  it('falls back to 30 days before expiry when the CA has no ARI', async () => {
    const requests: { domain: string; opts: RequestOptions }[] = [];
    const s = scheduler(requests);
    const noAri = new RenewalScheduler(
      // biome-ignore lint/suspicious/noExplicitAny: reuse the stub dependencies of `s`
      { ...(s as any).deps, ari: undefined },
      { beforeExpiryDays: 30, jitterSeconds: 3600, intervalSeconds: 3600 },
    );
    const expiry = 2_000_000_000;
    const plan = await noAri.plan('x.example.com', {
      fullchain_pem: '',
      cert_pem: '',
      privkey_pem: '',
      expiry,
    });
    expect(plan.renewAt).toBe(expiry * 1000 - 30 * 86_400_000 - 1_800_000);
    expect(plan.replaces).toBeUndefined();
  });
});

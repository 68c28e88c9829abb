import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Agent, createServer, request, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ariCertId } from '../../lib/sidecars/issuer/ari.ts';
import type { IssuerService } from '../../lib/sidecars/issuer/service.ts';
import { TestBed } from '../harness/testbed.ts';
import { type IssuerStack, startIssuerStack } from './stack.ts';

// Issue 10, item 9: ARI `replaces` exercised for real. Debian's Pebble 2.4 serves no ARI (its
// directory has no `renewalInfo`; checked below), so a small TLS front sits before the real Pebble:
// it passes every ACME request through unchanged (Pebble builds its URLs from the Host header, so
// the whole conversation goes through the front), adds `renewalInfo` to the directory and answers
// it itself, and records the decoded JWS payload of each new order. The issuer service is
// configured with the front as its CA: its own renewal scheduler asks ARI, and its own AcmeCa
// places the renewal order, which Pebble really validates and issues.
const run = promisify(execFile);
const bed = new TestBed('issuer-ari-pebble');
const DOMAIN = 'ari-real.example.com';
let stack: IssuerStack;
let svc: IssuerService;
let front: Server;
let frontUrl: string;
const orders: Record<string, unknown>[] = [];
const asked: string[] = [];
let pebbleDirectory: Record<string, unknown>;

function body(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function pass(
  upstream: URL,
  ca: string,
  req: IncomingMessage,
  payload: Buffer,
  res: ServerResponse,
  onStatus: (status: number) => void = () => {},
): void {
  const out = request(
    new URL(req.url ?? '/', upstream),
    { method: req.method, headers: req.headers, agent: new Agent({ ca }) },
    (up) => {
      onStatus(up.statusCode ?? 502);
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    },
  );
  out.on('error', (err) => {
    res.statusCode = 502;
    res.end(err.message);
  });
  out.end(payload);
}

/** The RFC 9773 id computed with openssl, independently of ari.ts: AKI keyid and serial bytes. */
async function opensslCertId(pem: string): Promise<string> {
  const file = join(bed.dir, 'served.pem');
  await writeFile(file, pem);
  const { stdout: text } = await run('openssl', [
    'x509',
    '-in',
    file,
    '-noout',
    '-ext',
    'authorityKeyIdentifier',
  ]);
  const aki = /([0-9A-F]{2}(?::[0-9A-F]{2})+)/i.exec(text)?.[1];
  const { stdout: serialOut } = await run('openssl', ['x509', '-in', file, '-noout', '-serial']);
  let serial = serialOut.trim().replace(/^serial=/, '');
  if (serial.length % 2) serial = `0${serial}`;
  // DER INTEGER contents: a leading 00 when the high bit is set.
  if (Number.parseInt(serial.slice(0, 2), 16) & 0x80) serial = `00${serial}`;
  if (!aki) throw new Error(`no AKI in\n${text}`);
  const b64 = (hex: string) => Buffer.from(hex, 'hex').toString('base64url');
  return `${b64(aki.replace(/:/g, ''))}.${b64(serial)}`;
}

beforeAll(async () => {
  stack = await startIssuerStack(bed);
  await stack.edge.seedTenant('acme');
  const upstream = new URL(stack.pebble.directoryUrl);
  const ca = stack.pebble.wfeCaPem;
  pebbleDirectory = JSON.parse(
    await new Promise<string>((resolve, reject) => {
      request(upstream, { agent: new Agent({ ca }) }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      })
        .on('error', reject)
        .end();
    }),
  );
  front = createServer(
    {
      cert: await readFile(join(bed.dir, 'pebble-wfe.crt')),
      key: await readFile(join(bed.dir, 'pebble-wfe.key')),
    },
    async (req, res) => {
      const url = req.url ?? '/';
      const payload = await body(req);
      if (url === upstream.pathname && req.method === 'GET') {
        const dir = JSON.parse(
          JSON.stringify(pebbleDirectory).replaceAll(upstream.host, req.headers.host ?? ''),
        );
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ ...dir, renewalInfo: `${frontUrl}/renewal-info` }));
        return;
      }
      const ari = /^\/renewal-info\/(.+)$/.exec(url);
      if (ari?.[1]) {
        asked.push(ari[1]);
        // An open window that ended yesterday: renew now.
        const day = 86_400_000;
        res.setHeader('content-type', 'application/json');
        res.setHeader('retry-after', '21600');
        res.end(
          JSON.stringify({
            suggestedWindow: {
              start: new Date(Date.now() - 2 * day).toISOString(),
              end: new Date(Date.now() - day).toISOString(),
            },
          }),
        );
        return;
      }
      if (url === new URL(String(pebbleDirectory.newOrder)).pathname && payload.length) {
        const jws = JSON.parse(payload.toString('utf8')) as { payload: string };
        const order = JSON.parse(Buffer.from(jws.payload, 'base64url').toString('utf8'));
        // Only orders Pebble created: it refuses some nonces on purpose and the client retries.
        pass(upstream, ca, req, payload, res, (status) => {
          if (status === 201) orders.push(order);
        });
        return;
      }
      pass(upstream, ca, req, payload, res);
    },
  );
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
  frontUrl = `https://127.0.0.1:${(front.address() as AddressInfo).port}`;
  svc = await stack.startIssuer(
    'ari',
    {
      acme: { cas: [{ name: 'pebble-ari', directoryUrl: `${frontUrl}${upstream.pathname}` }] },
      renewal: { beforeExpiryDays: 30, jitterSeconds: 0, ari: true },
    },
    stack.edge.redisPort,
  );
  await stack.edge.seedDomain(DOMAIN, 'acme');
});
afterAll(() => new Promise<void>((r) => front.close(() => r())));

describe('ARI replaces against a real Pebble order', () => {
  it('Debian’s Pebble 2.4 has no renewalInfo in its directory (hence the front)', () => {
    expect(pebbleDirectory.newOrder).toBeTypeOf('string');
    expect(pebbleDirectory.renewalInfo).toBeUndefined();
  });

  it('renews through the service’s scheduler with a Pebble order naming the replaced certificate', async () => {
    expect(await svc.issuer.request(DOMAIN)).toEqual({ status: 'issued', ca: 'pebble-ari' });
    expect(orders).toHaveLength(1);
    expect(orders[0]?.replaces).toBeUndefined();
    const first = await svc.certs.get(DOMAIN);
    if (!first) throw new Error('no certificate stored');
    const id = await opensslCertId(first.cert_pem);
    expect(ariCertId(first.cert_pem)).toBe(id);

    const outcomes = await svc.scheduler.runOnce();
    expect(outcomes.get(DOMAIN)).toEqual({ status: 'issued', ca: 'pebble-ari' });
    expect(asked).toContain(id);
    expect(orders).toHaveLength(2);
    expect(orders[1]).toMatchObject({ identifiers: [{ type: 'dns', value: DOMAIN }], replaces: id });
    const second = await svc.certs.get(DOMAIN);
    expect(second?.cert_pem).not.toBe(first.cert_pem);
    expect(ariCertId(second?.cert_pem ?? '')).not.toBe(id);
  });
});

import { createServer } from 'node:http';
import { request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { gunzipSync, gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeCertRecord } from '../../lib/local/self-signed-cert.ts';
import { type EdgeStack, errorLogProblems, PLATFORM, startEdgeStack } from '../harness/edge-stack.ts';
import { TestBed } from '../harness/testbed.ts';

const bed = new TestBed('compression');
let stack: EdgeStack;
const HTML = `<!doctype html><title>t</title>${'<p>hello edge</p>\n'.repeat(80)}`;
const HOST = `zip.${PLATFORM}`;

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One request whose body is kept as bytes, encoded as sent. */
function get(path: string, acceptEncoding?: string, host = HOST): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { host };
    if (acceptEncoding !== undefined) headers['accept-encoding'] = acceptEncoding;
    const req = request(
      {
        host: '127.0.0.1',
        port: stack.https,
        path,
        servername: host,
        headers,
        rejectUnauthorized: false,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const text = (r: Raw) =>
  (r.headers['content-encoding'] === 'gzip' ? gunzipSync(r.body) : r.body).toString('utf8');

beforeAll(async () => {
  stack = await startEdgeStack(bed);
  await stack.putCert(`*.${PLATFORM}`, await makeCertRecord([`*.${PLATFORM}`, PLATFORM]));
  await stack.seedTenant('zip');
  const html = { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'max-age=600' };
  stack.origin.set('/page.html', { body: HTML, headers: html });
  stack.origin.set('/tiny.html', { body: '<p>x</p>', headers: html });
  stack.origin.set('/photo.jpg', {
    body: 'x'.repeat(2000),
    headers: { 'content-type': 'image/jpeg', 'cache-control': 'max-age=600' },
  });
});

describe('compression', () => {
  it('gzips text for a client that asks, and never for one that does not, one cached copy per variant', async () => {
    const zipped = await get('/page.html', 'gzip, deflate, br');
    expect(zipped.status).toBe(200);
    expect(zipped.headers['content-encoding']).toBe('gzip');
    expect(String(zipped.headers.vary)).toMatch(/Accept-Encoding/i);
    expect(text(zipped)).toBe(HTML);
    expect(zipped.body.length).toBeLessThan(HTML.length / 4);

    // Accept-Encoding is normalised: every spelling without gzip is the one identity variant.
    for (const [i, ae] of [undefined, 'identity', 'gzip;q=0', 'br;q=0, gzip;q=0', 'deflate'].entries()) {
      const plain = await get('/page.html', ae);
      expect(plain.headers['content-encoding'], String(ae)).toBeUndefined();
      expect(plain.body.toString('utf8'), String(ae)).toBe(HTML);
      if (i > 0) expect(String(plain.headers['cache-status'])).toMatch(/hit/);
    }
    for (const ae of ['GZIP', '*', 'x-gzip', 'br;q=1, gzip;q=0.5']) {
      const again = await get('/page.html', ae);
      expect(again.headers['content-encoding'], ae).toBe('gzip');
      expect(text(again)).toBe(HTML);
    }
    expect(stack.origin.hits('/page.html')).toBe(2);
  });

  it('compresses a text object once: the second gzip request is a hit on the compressed copy', async () => {
    stack.origin.set('/once.html', {
      body: HTML,
      headers: { 'content-type': 'text/html', 'cache-control': 'max-age=600' },
    });
    const first = await get('/once.html', 'gzip');
    const second = await get('/once.html', 'gzip');
    expect(String(second.headers['cache-status'])).toMatch(/^edge; hit/);
    expect(second.headers['content-encoding']).toBe('gzip');
    expect(String(second.headers.vary)).toMatch(/Accept-Encoding/i);
    expect(gunzipSync(second.body).toString('utf8')).toBe(HTML);
    expect(second.body.equals(first.body)).toBe(true);
    expect(stack.origin.hits('/once.html')).toBe(1);
  });

  it('does not compress a response that says no-transform', async () => {
    stack.origin.set('/raw.html', {
      body: HTML,
      headers: { 'content-type': 'text/html', 'cache-control': 'max-age=600, no-transform' },
    });
    for (let i = 0; i < 2; i++) {
      const res = await get('/raw.html', 'gzip, br');
      expect(res.headers['content-encoding']).toBeUndefined();
      expect(res.body.toString('utf8')).toBe(HTML);
    }
    expect(stack.origin.hits('/raw.html')).toBe(1);
  });

  it('asks the origin for gzip at most, and decodes an origin-gzipped copy for a client without gzip', async () => {
    const asked: (string | undefined)[] = [];
    const origin = createServer((req, res) => {
      asked.push(req.headers['accept-encoding']);
      const body = gzipSync(HTML);
      res.writeHead(200, {
        'content-type': 'text/plain',
        'content-encoding': 'gzip',
        'content-length': body.length,
        'cache-control': 'max-age=600',
      });
      res.end(body);
    });
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    bed.onStop(() => new Promise<void>((resolve) => origin.close(() => resolve())));
    await stack.seedTenant('pre', `http://127.0.0.1:${(origin.address() as AddressInfo).port}`);
    const first = await get('/pre.txt', 'br, gzip, deflate', `pre.${PLATFORM}`);
    expect(text(first)).toBe(HTML);
    const plain = await get('/pre.txt', undefined, `pre.${PLATFORM}`);
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body.toString('utf8')).toBe(HTML);
    expect(asked.length).toBeGreaterThan(0);
    expect(asked.every((ae) => ae === 'gzip')).toBe(true);
  });

  it('leaves small bodies and non-text types as they are', async () => {
    expect((await get('/tiny.html', 'gzip')).headers['content-encoding']).toBeUndefined();
    expect((await get('/photo.jpg', 'gzip')).headers['content-encoding']).toBeUndefined();
  });

  it('logged no errors', () => {
    expect(errorLogProblems(stack)).toEqual([]);
  });
});

import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { makeCertRecord } from '../../lib/local/self-signed-cert.ts';
import { httpsGet } from '../harness/clients.ts';
import { type EdgeStack, errorLogProblems, PLATFORM, startEdgeStack } from '../harness/edge-stack.ts';
import { TestBed } from '../harness/testbed.ts';

const bed = new TestBed('cache-freshness');
let stack: EdgeStack;
const HOST = `s3.${PLATFORM}`;

interface S3Object {
  body: string;
  lastModified: Date;
  contentType?: string;
  headers?: Record<string, string>;
}

/**
 * An origin that behaves like an S3 website endpoint: ETag and Last-Modified, no Cache-Control
 * unless the object's metadata sets one, and 304 to a matching If-None-Match/If-Modified-Since.
 */
class S3LikeOrigin {
  readonly objects = new Map<string, S3Object>();
  readonly seen: { url: string; status: number; authorization?: string }[] = [];
  private server: Server | undefined;
  port = 0;

  static etag(body: string): string {
    return `"${createHash('md5').update(body).digest('hex')}"`;
  }

  requests(url: string): number {
    return this.seen.filter((r) => r.url === url).length;
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const url = req.url ?? '/';
      const object = this.objects.get(url);
      const record = (status: number) =>
        this.seen.push({ url, status, authorization: req.headers.authorization });
      if (!object) {
        record(404);
        res.writeHead(404, { 'content-type': 'text/plain' }).end('NoSuchKey\n');
        return;
      }
      const etag = S3LikeOrigin.etag(object.body);
      const headers = {
        etag,
        'last-modified': object.lastModified.toUTCString(),
        'content-type': object.contentType ?? 'application/octet-stream',
        ...object.headers,
      };
      const inm = req.headers['if-none-match'];
      const ims = req.headers['if-modified-since'];
      const notModified =
        inm !== undefined
          ? inm.split(',').some((t) => t.trim().replace(/^W\//, '') === etag)
          : ims !== undefined && Date.parse(ims) >= Math.floor(object.lastModified.getTime() / 1000) * 1000;
      if (notModified) {
        record(304);
        res.writeHead(304, headers).end();
        return;
      }
      record(200);
      res.writeHead(200, { ...headers, 'content-length': String(Buffer.byteLength(object.body)) });
      res.end(object.body);
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

const origin = new S3LikeOrigin();
const get = (path: string, headers?: Record<string, string>) =>
  httpsGet({ port: stack.https, host: HOST, path, headers });
const secondsAgo = (s: number) => new Date(Date.now() - s * 1000);

beforeAll(async () => {
  stack = await startEdgeStack(bed);
  await origin.start();
  bed.onStop(() => origin.stop());
  await stack.putCert(`*.${PLATFORM}`, await makeCertRecord([`*.${PLATFORM}`, PLATFORM]));
  await stack.seedTenant('s3', `http://127.0.0.1:${origin.port}`);
});

describe('an S3-website-like origin: validators, no Cache-Control', () => {
  it('answers at least 95 of 100 requests for an object larger than the memory tier from the cache', async () => {
    // 10 days since Last-Modified: heuristic freshness 10 % of that, capped at a day.
    origin.objects.set('/big.bin', { body: 'b'.repeat(100 * 1024), lastModified: secondsAgo(10 * 86400) });
    let hits = 0;
    for (let i = 0; i < 100; i++) {
      const res = await get('/big.bin');
      expect(res.status).toBe(200);
      expect(res.body.length).toBe(100 * 1024);
      if (/^edge; hit/.test(String(res.headers['cache-status']))) hits++;
    }
    expect(hits).toBeGreaterThanOrEqual(95);
    expect(origin.requests('/big.bin')).toBeLessThanOrEqual(5);
  });

  it('sees a changed object once its heuristic lifetime has passed, through revalidation', async () => {
    // Last-Modified 10 s ago: a heuristic lifetime of 1 s.
    origin.objects.set('/page.bin', { body: 'v1'.repeat(40 * 1024), lastModified: secondsAgo(10) });
    expect((await get('/page.bin')).body.startsWith('v1')).toBe(true);
    expect(String((await get('/page.bin')).headers['cache-status'])).toMatch(/^edge; hit/);

    origin.objects.set('/page.bin', { body: 'v2'.repeat(40 * 1024), lastModified: new Date() });
    await vi.waitFor(
      async () => {
        const res = await get('/page.bin');
        expect(res.body.startsWith('v2')).toBe(true);
      },
      { timeout: 10000, interval: 250 },
    );
    // The edge asked with the stored validators, and the origin answered the new object.
    const conditional = origin.seen.filter((r) => r.url === '/page.bin');
    expect(conditional.at(-1)?.status).toBe(200);
  });

  it('keeps an unchanged object for a new heuristic lifetime after a revalidation answered 304', async () => {
    // Last-Modified 30 s ago: a heuristic lifetime of 3 s, renewed by each 304.
    origin.objects.set('/same.bin', { body: 's'.repeat(80 * 1024), lastModified: secondsAgo(30) });
    await get('/same.bin');
    await vi.waitFor(
      async () => {
        await get('/same.bin');
        expect(origin.seen.some((r) => r.url === '/same.bin' && r.status === 304)).toBe(true);
      },
      { timeout: 10000, interval: 250 },
    );
    const before = origin.requests('/same.bin');
    const res = await get('/same.bin');
    expect(res.body.length).toBe(80 * 1024);
    expect(res.headers['cache-status']).toBe('edge; hit');
    expect(origin.requests('/same.bin')).toBe(before);
  });
});

describe('credentials (RFC 9111 §3.5)', () => {
  it('never answers a request with Authorization from a shared copy', async () => {
    origin.objects.set('/shared.bin', { body: 'public copy', lastModified: secondsAgo(86400) });
    await get('/shared.bin');
    expect(String((await get('/shared.bin')).headers['cache-status'])).toMatch(/^edge; hit/);
    const before = origin.requests('/shared.bin');
    const res = await get('/shared.bin', { authorization: 'Bearer secret' });
    expect(res.headers['cache-status']).not.toMatch(/hit/);
    expect(origin.requests('/shared.bin')).toBe(before + 1);
    expect(origin.seen.at(-1)?.authorization).toBe('Bearer secret');
  });

  it('does not store an answer to a request with Authorization unless it says public', async () => {
    origin.objects.set('/mine.bin', {
      body: 'for the user only',
      lastModified: secondsAgo(86400),
      headers: { 'cache-control': 'max-age=600' },
    });
    const first = await get('/mine.bin', { authorization: 'Bearer secret' });
    expect(first.headers['cache-status']).toMatch(/stored=\?0; detail=authorization/);
    await get('/mine.bin');
    expect(origin.requests('/mine.bin')).toBe(2);

    origin.objects.set('/open.bin', {
      body: 'for everyone',
      lastModified: secondsAgo(86400),
      headers: { 'cache-control': 'public, max-age=600' },
    });
    expect((await get('/open.bin', { authorization: 'Bearer secret' })).headers['cache-status']).toMatch(
      /; stored$/,
    );
    const anonymous = await get('/open.bin');
    expect(anonymous.body).toBe('for everyone');
    expect(String(anonymous.headers['cache-status'])).toMatch(/^edge; hit/);
    expect(origin.requests('/open.bin')).toBe(1);
  });
});

describe('CDN-Cache-Control (RFC 9213)', () => {
  it('keeps a copy for the edge when CDN-Cache-Control says so, whatever Cache-Control tells browsers', async () => {
    origin.objects.set('/cdn.bin', {
      body: 'c'.repeat(100 * 1024),
      lastModified: secondsAgo(86400),
      headers: { 'cache-control': 'max-age=0', 'cdn-cache-control': 'max-age=600' },
    });
    const first = await get('/cdn.bin');
    expect(first.headers['cache-status']).toMatch(/; stored$/);
    const second = await get('/cdn.bin');
    expect(String(second.headers['cache-status'])).toMatch(/^edge; hit/);
    expect(second.headers['cache-control']).toBe('max-age=0');
    expect(origin.requests('/cdn.bin')).toBe(1);
  });

  it('stores nothing when CDN-Cache-Control says no-store, whatever Cache-Control allows', async () => {
    origin.objects.set('/nocdn.bin', {
      body: 'n',
      lastModified: secondsAgo(86400),
      headers: { 'cache-control': 'max-age=600', 'cdn-cache-control': 'no-store' },
    });
    expect((await get('/nocdn.bin')).headers['cache-status']).toMatch(/stored=\?0; detail=no-store/);
    await get('/nocdn.bin');
    expect(origin.requests('/nocdn.bin')).toBe(2);
  });
});

describe('origin control headers', () => {
  it('ignores an origin X-Accel-Expires: only the fill hop sets it', async () => {
    origin.objects.set('/accel.bin', {
      body: 'a',
      lastModified: secondsAgo(86400),
      headers: { 'cache-control': 'no-store', 'x-accel-expires': '600' },
    });
    const res = await get('/accel.bin');
    expect(res.headers['x-accel-expires']).toBeUndefined();
    await get('/accel.bin');
    expect(origin.requests('/accel.bin')).toBe(2);
  });

  it('logged no errors', () => {
    expect(errorLogProblems(stack)).toEqual([]);
  });
});

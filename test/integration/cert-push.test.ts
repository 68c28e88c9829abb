import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { makeCertRecord } from '../../lib/local/self-signed-cert.ts';
import { handshake, servedSan } from '../harness/clients.ts';
import { type EdgeStack, errorLogProblems, metric, startEdgeStack } from '../harness/edge-stack.ts';
import { TestBed } from '../harness/testbed.ts';

/**
 * edge/cert_push.lua on a real nginx (two workers) and a real Redis with the task's keyspace
 * notifications: certificates reach the shared dict when they are written, so a name's first
 * handshake in a worker reads no Redis; changes and deletions reach every worker without
 * POST /certs/forget; a reload's new worker syncs what its watch could not see; a Redis restart
 * interrupts the watch, which comes back by itself.
 */
const bed = new TestBed('cert-push');
let stack: EdgeStack;

const redisLookups = () => metric(stack, 'edge_cert_lookups_total{tier="redis"}');

/** The SHA-256 fingerprint of the certificate the edge serves for a name. */
async function servedFingerprint(name: string): Promise<string> {
  const h = await handshake(stack.https, name);
  h.socket.destroy();
  return h.chain.fingerprint256;
}

/** Lines of the edge's log for one structured event. */
function events(name: string): Record<string, unknown>[] {
  return readFileSync(stack.edge.errorLog, 'utf8')
    .split('\n')
    .filter((l) => l.includes(`"event":"${name}"`))
    .map((l) => JSON.parse(l.slice(l.indexOf('{"'), l.lastIndexOf('}') + 1)) as Record<string, unknown>);
}

/** The fingerprint of a PEM certificate as Node prints it (AA:BB:...). */
async function fingerprintOf(pem: string): Promise<string> {
  const { X509Certificate } = await import('node:crypto');
  return new X509Certificate(pem).fingerprint256;
}

beforeAll(async () => {
  stack = await startEdgeStack(bed);
  // The watch's first sync is logged once it follows notifications.
  await vi.waitFor(() => expect(events('cert_push_synced').length).toBeGreaterThan(0), { timeout: 10_000 });
}, 60_000);

describe('certificates pushed into the shared dict as Redis gets them', () => {
  it('a certificate written while the edge runs is served without a Redis read, in every worker', async () => {
    await stack.putCertPushed('new.push.test', await makeCertRecord(['new.push.test']));
    const before = await redisLookups();
    for (let i = 0; i < 8; i++)
      expect(await servedSan(stack.https, 'new.push.test')).toBe('DNS:new.push.test');
    expect(await redisLookups()).toBe(before);
  });

  it('a renewal reaches every worker without /certs/forget', async () => {
    const name = 'renewed.push.test';
    const first = await makeCertRecord([name]);
    await stack.putCertPushed(name, first);
    const firstPrint = await fingerprintOf(first.cert_pem);
    for (let i = 0; i < 6; i++) expect(await servedFingerprint(name)).toBe(firstPrint);

    const renewed = await makeCertRecord([name]);
    const renewedPrint = await fingerprintOf(renewed.cert_pem);
    expect(renewedPrint).not.toBe(firstPrint);
    await stack.putCertPushed(name, renewed);
    // Within the version-mode interval (200 ms) every worker dropped its parsed copy.
    await vi.waitFor(
      async () => {
        for (let i = 0; i < 8; i++) expect(await servedFingerprint(name)).toBe(renewedPrint);
      },
      { timeout: 5000, interval: 100 },
    );
  });

  it('a deleted certificate is forgotten in every worker: the fallback certificate', async () => {
    const name = 'deleted.push.test';
    await stack.putCertPushed(name, await makeCertRecord([name]));
    for (let i = 0; i < 4; i++) expect(await servedSan(stack.https, name)).toBe(`DNS:${name}`);
    const forgotten = await metric(stack, 'edge_cert_pushes_total{result="forgotten"}');
    await stack.redis.del(stack.keys.cert(name));
    await vi.waitFor(
      async () =>
        expect(await metric(stack, 'edge_cert_pushes_total{result="forgotten"}')).toBe(forgotten + 1),
      { timeout: 5000, interval: 100 },
    );
    await vi.waitFor(
      async () => {
        for (let i = 0; i < 8; i++) expect(await servedSan(stack.https, name)).toMatch(/edge fallback/);
      },
      { timeout: 5000, interval: 100 },
    );
  });

  it('ignores keys of the pattern that are no host name, and takes no TTL change for a write', async () => {
    const pushed = await metric(stack, 'edge_cert_pushes_total{result="pushed"}');
    await stack.redis.set(`${stack.keys.cert('bad_name!')}`, '{}');
    await stack.redis.set(`${stack.edge.config.redis.prefix}:@domain:x:latest`, '{}');
    // A TTL set on a stored certificate changes no value: nothing to push.
    await stack.putCertPushed('ttl.push.test', await makeCertRecord(['ttl.push.test']));
    await stack.redis.expire(stack.keys.cert('ttl.push.test'), 3600);
    // A known write after them: once it is pushed, the ones before were seen and skipped.
    await stack.putCertPushed('after.push.test', await makeCertRecord(['after.push.test']));
    expect(await metric(stack, 'edge_cert_pushes_total{result="pushed"}')).toBe(pushed + 2);
  });

  it('a record that is not the stored JSON is pushed as it is, then refused at the handshake: the fallback', async () => {
    const corrupt = await metric(stack, 'edge_errors_total{kind="corrupt_certificate"}');
    const pushed = await metric(stack, 'edge_cert_pushes_total{result="pushed"}');
    await stack.redis.set(stack.keys.cert('notjson.push.test'), 'not json at all');
    await vi.waitFor(
      async () => expect(await metric(stack, 'edge_cert_pushes_total{result="pushed"}')).toBe(pushed + 1),
      { timeout: 5000, interval: 100 },
    );
    expect(await servedSan(stack.https, 'notjson.push.test')).toMatch(/edge fallback/);
    expect(await metric(stack, 'edge_errors_total{kind="corrupt_certificate"}')).toBeGreaterThan(corrupt);
  });

  it("a reload's new worker syncs what no notification announced", async () => {
    const name = 'unannounced.push.test';
    // Notifications off: the write below reaches Redis and nothing else.
    await stack.redis.config('SET', 'notify-keyspace-events', '');
    try {
      await stack.putCert(name, await makeCertRecord([name]));
    } finally {
      await stack.redis.config('SET', 'notify-keyspace-events', 'K$gx');
    }
    const synced = events('cert_push_synced').length;
    process.kill(stack.edge.process.pid as number, 'SIGHUP');
    await vi.waitFor(() => expect(events('cert_push_synced').length).toBe(synced + 1), { timeout: 10_000 });
    const last = events('cert_push_synced').at(-1) as { epoch: number; pushed: number };
    expect(last.pushed).toBeGreaterThanOrEqual(5);
    const before = await redisLookups();
    expect(await servedSan(stack.https, name)).toBe(`DNS:${name}`);
    expect(await redisLookups()).toBe(before);
  }, 30_000);

  it('comes back by itself after Redis restarts, and pushes what is written then', async () => {
    // The edge keeps serving what it parsed while Redis is away.
    await stack.putCertPushed('kept.push.test', await makeCertRecord(['kept.push.test']));
    expect(await servedSan(stack.https, 'kept.push.test')).toBe('DNS:kept.push.test');
    const interrupted = events('cert_push_interrupted').length;
    const synced = events('cert_push_synced').length;
    await stack.redisServer.kill();
    await vi.waitFor(() => expect(events('cert_push_interrupted').length).toBeGreaterThan(interrupted), {
      timeout: 10_000,
    });
    expect(await servedSan(stack.https, 'kept.push.test')).toBe('DNS:kept.push.test');
    await stack.restartRedis();
    await vi.waitFor(() => expect(events('cert_push_synced').length).toBeGreaterThan(synced), {
      timeout: 20_000,
    });
    const before = await redisLookups();
    await stack.putCertPushed('after-restart.push.test', await makeCertRecord(['after-restart.push.test']));
    expect(await servedSan(stack.https, 'after-restart.push.test')).toBe('DNS:after-restart.push.test');
    expect(await redisLookups()).toBe(before);
  }, 60_000);

  it('logs no error but the corrupt record, and no key material', () => {
    const problems = errorLogProblems(stack);
    expect(problems.filter((l) => !l.includes('"event":"corrupt_certificate"'))).toEqual([]);
    expect(problems.length).toBeGreaterThanOrEqual(1);
    expect(readFileSync(stack.edge.errorLog, 'utf8')).not.toContain('PRIVATE KEY');
  });
});

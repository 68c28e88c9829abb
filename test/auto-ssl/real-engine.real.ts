/**
 * EDGE_TLS_ENGINE=auto-ssl against the real lua-resty-auto-ssl (v0.13.1) and dehydrated, with
 * Debian's nginx, Redis and Pebble. Not part of `npm test` / `npm run test:all`: CI cannot fetch
 * lua-resty-auto-ssl. Run with `npm run test:auto-ssl` and EDGE_AUTO_SSL_DIR set to an installed
 * tree (`share/lua/5.1/resty/auto-ssl.lua`, `bin/resty-auto-ssl/dehydrated`): docs/auto-ssl.md.
 */
import { generateKeyPairSync } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys } from '../../lib/core/redis-format.ts';
import { dehydratedCaHash, prepareAutoSslDir } from '../../lib/edge/auto-ssl-dir.ts';
import { detectNginxRuntime } from '../../lib/edge/nginx-runtime.ts';
import { type LocalEdge, localEdgeConfig, startEdge } from '../../lib/local/edge-server.ts';
import { type LocalPebble, startPebble } from '../../lib/local/pebble.ts';
import { freePort } from '../../lib/local/ports.ts';
import type { ManagedProcess } from '../../lib/local/process.ts';
import { startRedisServer } from '../../lib/local/redis-server.ts';

const TREE = process.env.EDGE_AUTO_SSL_DIR ?? '';
const LUA = join(TREE, 'share/lua/5.1');
const DEHYDRATED = join(TREE, 'bin/resty-auto-ssl/dehydrated');
if (!TREE || !existsSync(join(LUA, 'resty/auto-ssl.lua')) || !existsSync(DEHYDRATED)) {
  throw new Error(
    `EDGE_AUTO_SSL_DIR must name an installed lua-resty-auto-ssl tree (share/lua/5.1/resty/auto-ssl.lua and bin/resty-auto-ssl/dehydrated); got ${JSON.stringify(TREE)}. See docs/auto-ssl.md.`,
  );
}

const TOKEN = 'a-control-token-long-enough-for-the-edge-0123456789';
const PREFIX = 'certs';
const NOBODY = 65534;

/** dehydrated 0.7.1 and later take EC account keys (the deployment's P-256); 0.7.0 only RSA. */
const dehydratedTakesEc = readFileSync(DEHYDRATED, 'utf8').includes('ACCOUNT_KEY_ALGO');
const sharedKey = (
  dehydratedTakesEc
    ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : generateKeyPairSync('rsa', { modulusLength: 2048 })
).privateKey
  .export({ type: 'pkcs8', format: 'pem' })
  .toString();

const taken = new Set<number>();
/** Free ports not handed out before in this run (freePort alone may repeat one). */
async function distinctPorts(n: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < n) {
    const p = await freePort();
    if (!taken.has(p)) {
      taken.add(p);
      ports.push(p);
    }
  }
  return ports;
}

interface Handshake {
  readonly ms: number;
  readonly issuer?: string;
  readonly error?: string;
}

/** One TLS handshake with SNI; the certificate's issuer CN, or how the connection ended. */
function handshake(port: number, servername: string): Promise<Handshake> {
  const start = performance.now();
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false });
    socket.setTimeout(30_000);
    const done = (h: Omit<Handshake, 'ms'>) => {
      socket.destroy();
      resolve({ ms: Math.round(performance.now() - start), ...h });
    };
    socket.once('secureConnect', () => {
      const issuer = socket.getPeerCertificate().issuer?.CN;
      done({ issuer: typeof issuer === 'string' ? issuer : String(issuer) });
    });
    socket.once('timeout', () => done({ error: 'timeout' }));
    socket.once('error', (err) => done({ error: err.message }));
    socket.once('close', () => done({ error: 'closed before the handshake completed' }));
  });
}

function chownTree(path: string): void {
  chownSync(path, NOBODY, NOBODY);
  if (!statSync(path).isDirectory()) return;
  for (const entry of readdirSync(path)) chownTree(join(path, entry));
}

describe('EDGE_TLS_ENGINE=auto-ssl with lua-resty-auto-ssl and dehydrated', () => {
  const dir = mkdtempSync(join(tmpdir(), 'edge-auto-ssl-real-'));
  chmodSync(dir, 0o755); // nginx's workers (nobody) enter it
  const procs: ManagedProcess[] = [];
  const edges: LocalEdge[] = [];
  let pebble: LocalPebble;
  let redis: Redis;
  const keys = new RedisKeys(PREFIX);
  let httpPort: number;

  async function edge(name: string, issuerWaitMs: number): Promise<LocalEdge> {
    const runDir = join(dir, name);
    const [httpsPort, controlPort, hookServerPort, ownHttpPort] = await distinctPorts(4);
    const opts = {
      dir: runDir,
      controlToken: TOKEN,
      config: {
        region: name,
        platformDomain: 'platform.example',
        redis: { port: redisPort, prefix: PREFIX },
        tls: {
          engine: 'auto-ssl' as const,
          issuerWaitMs,
          autoSsl: { ca: pebble.directoryUrl, caBundle: join(dir, 'pebble-wfe.crt'), hookServerPort },
        },
        // The first edge answers Pebble's HTTP-01 for both: challenges live in the shared Redis.
        listen: {
          address: '127.0.0.1',
          httpPort: edges.length === 0 ? httpPort : ownHttpPort,
          httpsPort,
          controlPort,
        },
        paths: { luaPackagePath: [`${LUA}/?.lua`, ...detectNginxRuntime().luaPackagePath] },
      },
    };
    // As the edge-config container does before nginx starts, then owned by nginx's workers.
    mkdirSync(runDir, { recursive: true });
    await prepareAutoSslDir(localEdgeConfig(opts), sharedKey);
    chownTree(join(runDir, 'auto-ssl'));
    const e = await startEdge(opts);
    edges.push(e);
    return e;
  }
  let redisPort: number;

  beforeAll(async () => {
    [httpPort = 0, redisPort = 0] = await distinctPorts(2);
    procs.push(await startRedisServer({ port: redisPort, dir }));
    // dehydrated before 0.7.1 does not retry badNonce; Pebble rejects 5% of nonces by default.
    pebble = await startPebble({ dir, httpPort, env: { PEBBLE_WFE_NONCEREJECT: '0' } });
    redis = new Redis({ port: redisPort, lazyConnect: true });
    await redis.connect();
    for (const d of ['a.customer.test', 'b.customer.test', 'slow.customer.test']) {
      await redis.set(keys.domain(d), JSON.stringify({ domain: d, tenant: 'acme' }));
    }
    await redis.set(
      keys.tenant('acme'),
      JSON.stringify({ id: 'acme', origin: { type: 'http', url: 'http://127.0.0.1:9' } }),
    );
  }, 120_000);

  afterAll(async () => {
    for (const e of edges) await e.process.stop();
    await redis?.quit();
    await pebble?.stop();
    for (const p of procs) await p.stop();
  });

  let a: LocalEdge;
  let b: LocalEdge;

  it('runs two edges on one host, each with its own hook server port', async () => {
    a = await edge('edge-a', 9000);
    b = await edge('edge-b', 1000);
    expect(a.config.tls.autoSsl.hookServerPort).not.toBe(b.config.tls.autoSsl.hookServerPort);
    expect(readFileSync(a.confPath, 'utf8')).toContain(
      `listen 127.0.0.1:${a.config.tls.autoSsl.hookServerPort};`,
    );
  }, 60_000);

  it('issues on the first handshake from the CA in the config', async () => {
    const root = await pebble.root();
    const h = await handshake(a.config.listen.httpsPort, 'a.customer.test');
    console.log(`first handshake (issued): ${h.ms} ms, issuer ${h.issuer ?? h.error}`);
    expect(h.error).toBeUndefined();
    expect(h.issuer).toMatch(/Pebble/);
    expect(root).toContain('BEGIN CERTIFICATE');
    const stored = JSON.parse((await redis.get(keys.cert('a.customer.test'))) ?? '{}');
    expect(Object.keys(stored).sort()).toEqual(
      expect.arrayContaining(['expiry', 'fullchain_pem', 'privkey_pem']),
    );
    expect(await redis.exists(`${PREFIX}:a.customer.test:issue_cert_lock`)).toBe(0);
  }, 60_000);

  it('serves the fallback, not a dropped connection, when issuance outlasts the bound; no lock stays', async () => {
    const h = await handshake(b.config.listen.httpsPort, 'slow.customer.test');
    console.log(`first handshake (bound 1000 ms): ${h.ms} ms, issuer ${h.issuer ?? h.error}`);
    expect(h.error).toBeUndefined();
    expect(h.issuer).not.toMatch(/Pebble/); // the fallback certificate
    expect(h.ms).toBeLessThan(3000);
    let cert: string | null = null;
    for (let i = 0; i < 60 && !cert; i++) {
      await new Promise((r) => setTimeout(r, 500));
      cert = await redis.get(keys.cert('slow.customer.test'));
    }
    expect(cert).not.toBeNull();
    expect(await redis.exists(`${PREFIX}:slow.customer.test:issue_cert_lock`)).toBe(0);
    const again = await handshake(b.config.listen.httpsPort, 'slow.customer.test');
    expect(again.issuer).toMatch(/Pebble/);
  }, 60_000);

  it('uses the deployment account key: one ACME account across both edges', async () => {
    const accountUrl = (e: LocalEdge) => {
      const base = join(
        e.config.paths.runDir,
        'auto-ssl/letsencrypt/accounts',
        dehydratedCaHash(pebble.directoryUrl),
      );
      expect(readFileSync(join(base, 'account_key.pem'), 'utf8')).toBe(sharedKey);
      return JSON.parse(readFileSync(join(base, 'account_id.json'), 'utf8')).url as string;
    };
    const urlA = accountUrl(a);
    expect(urlA).toMatch(/^https:\/\/127\.0\.0\.1:\d+\//);
    expect(accountUrl(b)).toBe(urlA);
    console.log(`account key ${dehydratedTakesEc ? 'P-256' : 'RSA 2048 (dehydrated < 0.7.1)'}: ${urlA}`);
  });

  it('logs no unexpected errors', () => {
    for (const e of edges) {
      const log = readFileSync(e.errorLog, 'utf8');
      const errors = log.split('\n').filter((l) => /\[(error|crit|alert|emerg)\]/.test(l));
      // Pebble's certificates carry no OCSP URL: auto-ssl logs that on every full handshake (known).
      const unexpected = errors.filter((l) => !/failed to set ocsp stapling/.test(l));
      if (unexpected.length > 0) writeFileSync(join(dir, `${e.config.region}.errors`), unexpected.join('\n'));
      expect(unexpected).toEqual([]);
    }
  });
});

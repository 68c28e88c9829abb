import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import type { EdgeConfigInput } from '../../lib/config/edge-config.ts';
import { type CertRecord, RedisKeys } from '../../lib/core/redis-format.ts';
import { type LocalEdge, startEdge } from '../../lib/local/edge-server.ts';
import { freePort } from '../../lib/local/ports.ts';
import type { ManagedProcess } from '../../lib/local/process.ts';
import { startRedisServer } from '../../lib/local/redis-server.ts';
import { httpGet, type Reply } from './clients.ts';
import { TestOrigin } from './origin.ts';
import type { TestBed } from './testbed.ts';

export const PLATFORM = 'platform.test';

export interface EdgeStack {
  edge: LocalEdge;
  redisServer: ManagedProcess;
  redisPort: number;
  redis: Redis;
  origin: TestOrigin;
  keys: RedisKeys;
  token: string;
  https: number;
  http: number;
  control: number;
  seedTenant(id: string, originUrl?: string): Promise<void>;
  seedDomain(domain: string, tenant: string): Promise<void>;
  putCert(domain: string, record: CertRecord): Promise<void>;
  /**
   * putCert, then waits until the edge's watch (edge/cert_push.lua) has put it in the shared dict:
   * the next handshake for it reads no Redis.
   */
  putCertPushed(domain: string, record: CertRecord): Promise<void>;
  purge(body: unknown, token?: string | null): Promise<Reply>;
  restartRedis(): Promise<void>;
}

type Overrides = Partial<Omit<EdgeConfigInput, 'paths' | 'platformDomain'>>;

/** redis-server, a local origin and the edge (real nginx + Lua) on free loopback ports. */
export async function startEdgeStack(bed: TestBed, overrides: Overrides = {}): Promise<EdgeStack> {
  const redisPort = await freePort();
  let redisServer = bed.track(await startRedisServer({ port: redisPort, dir: bed.dir }));
  const redis = new Redis({ port: redisPort, maxRetriesPerRequest: 1, lazyConnect: false });
  redis.on('error', () => {});
  bed.onStop(() => redis.disconnect());
  const origin = new TestOrigin();
  await origin.start();
  bed.onStop(() => origin.stop());

  const token = randomBytes(24).toString('hex');
  const [http, https, control] = [await freePort(), await freePort(), await freePort()];
  const { listen, redis: redisConf, nginx, ...rest } = overrides;
  const edge = await startEdge({
    dir: bed.dir,
    controlToken: token,
    config: {
      platformDomain: PLATFORM,
      ...rest,
      listen: { address: '127.0.0.1', httpPort: http, httpsPort: https, controlPort: control, ...listen },
      redis: { port: redisPort, ...redisConf },
      nginx: { workerProcesses: 2, errorLogLevel: 'info', ...nginx },
    },
  });
  bed.track(edge.process);
  const keys = new RedisKeys(edge.config.redis.prefix);
  const pushes = () => metricAt(control, 'edge_cert_pushes_total{result="pushed"}');
  const waitForPushes = async (count: number) => {
    const deadline = Date.now() + 10_000;
    while ((await pushes()) < count) {
      if (Date.now() > deadline) throw new Error(`the edge pushed fewer than ${count} certificates in 10 s`);
    }
  };

  return {
    edge,
    get redisServer() {
      return redisServer;
    },
    redisPort,
    redis,
    origin,
    keys,
    token,
    https,
    http,
    control,
    async seedTenant(id, originUrl = `http://127.0.0.1:${origin.port}`) {
      await redis.set(keys.tenant(id), JSON.stringify({ id, origin: { type: 'http', url: originUrl } }));
    },
    async seedDomain(domain, tenant) {
      await redis.set(keys.domain(domain), JSON.stringify({ domain, tenant }));
    },
    async putCert(domain, record) {
      await redis.set(keys.cert(domain), JSON.stringify(record));
    },
    async putCertPushed(domain, record) {
      const before = await pushes();
      await redis.set(keys.cert(domain), JSON.stringify(record));
      await waitForPushes(before + 1);
    },
    purge(body, tok = token) {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (tok !== null) headers.authorization = `Bearer ${tok}`;
      return httpGet({
        port: control,
        path: '/purge',
        method: 'POST',
        headers,
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
    },
    async restartRedis() {
      redisServer = bed.track(await startRedisServer({ port: redisPort, dir: bed.dir }));
    },
  };
}

/** The value of one counter in the edge's Prometheus output (0 when absent). */
export function metric(stack: EdgeStack, series: string): Promise<number> {
  return metricAt(stack.control, series);
}

/** metric(), from the edge's control port. */
async function metricAt(control: number, series: string): Promise<number> {
  const res = await httpGet({ port: control, path: '/metrics' });
  const line = res.body.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

/** Lines of the edge's error log at level error or worse (the log is nginx's own format). */
export function errorLogProblems(stack: EdgeStack): string[] {
  return readFileSync(stack.edge.errorLog, 'utf8')
    .split('\n')
    .filter((l) => /\[(error|crit|alert|emerg)\]/.test(l));
}

import { X509Certificate } from 'node:crypto';
import { request } from 'node:https';
import { connect } from 'node:tls';
import { Redis } from 'ioredis';
import { Announcer } from '../../lib/core/bus/announcer.ts';
import { RedisStreamsBus } from '../../lib/core/bus/redis/streams-bus.ts';
import type { CertRecord } from '../../lib/core/redis-format.ts';
import { LocalKeyFileProvider } from '../../lib/core/store/local-keys.ts';
import { Store } from '../../lib/core/store/store.ts';
import type { LocalRegion, LocalRegions } from '../../lib/local/regions.ts';

/** The certificate a region serves for a name: its SHA-256 fingerprint and SAN. */
export function served(
  address: string,
  port: number,
  servername: string,
): Promise<{ fingerprint: string; san: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: address, port, servername, rejectUnauthorized: false });
    socket.once('secureConnect', () => {
      const cert = socket.getPeerX509Certificate();
      socket.destroy();
      resolve({ fingerprint: cert?.fingerprint256 ?? '', san: cert?.subjectAltName ?? '' });
    });
    socket.once('error', reject);
  });
}

export const fingerprint = (record: CertRecord) => new X509Certificate(record.cert_pem).fingerprint256;

/** GET over HTTPS from one region with SNI = Host; returns status and Cache-Status. */
export function get(
  address: string,
  port: number,
  host: string,
  path: string,
): Promise<{ status: number; cacheStatus: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: address,
        port,
        path,
        servername: host,
        headers: { host },
        rejectUnauthorized: false,
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            cacheStatus: String(res.headers['cache-status'] ?? ''),
            body,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Clients a test (or a bench) uses against local regions: the store, the bus, each region's Redis. */
export class RegionClients {
  readonly redis = new Map<string, Redis>();
  readonly bus: RedisStreamsBus;
  readonly admin: Redis;

  private constructor(
    readonly regions: LocalRegions,
    readonly store: Store,
    readonly announcer: Announcer,
    private readonly dynamo: { destroy(): void },
  ) {
    this.bus = (announcer as unknown as { publisher: RedisStreamsBus }).publisher;
    this.admin = new Redis({ port: regions.busRedisPort });
  }

  static async open(regions: LocalRegions): Promise<RegionClients> {
    const client = regions.dynalite.client();
    const store = new Store({
      client,
      tableName: regions.tableName,
      keys: await LocalKeyFileProvider.open(regions.keyFile),
    });
    const bus = new RedisStreamsBus({ redis: { port: regions.busRedisPort }, group: 'test-publisher' });
    return new RegionClients(regions, store, new Announcer(store, bus), client);
  }

  of(region: LocalRegion): Redis {
    let r = this.redis.get(region.spec.name);
    if (!r) {
      r = new Redis({ host: region.spec.address, port: this.regions.ports.redis });
      r.on('error', () => {});
      this.redis.set(region.spec.name, r);
    }
    return r;
  }

  /** Every key under the prefix with its value (strings, hashes), for comparing replicas. */
  async snapshot(region: LocalRegion): Promise<Record<string, unknown>> {
    const r = this.of(region);
    // The sqs-listener's bootstrap sentinel names its own Redis run and time: per task by design.
    const sentinel = `${this.regions.redisPrefix}:@bootstrapped`;
    const keys = (await r.keys(`${this.regions.redisPrefix}:*`)).filter((k) => k !== sentinel).sort();
    const out: Record<string, unknown> = {};
    // Values parsed: the issuer's JSON and the store's may order the same fields differently.
    for (const k of keys)
      out[k] = (await r.type(k)) === 'hash' ? await r.hgetall(k) : JSON.parse((await r.get(k)) ?? 'null');
    return out;
  }

  /** How many events of a type for a domain went over the bus. */
  async published(type: string, domain: string): Promise<number> {
    const entries = (await this.admin.xrange('edge:events', '-', '+')) as [string, string[]][];
    return entries.filter(([, f]) => f[1] === type && (f[3] ?? '').includes(`"domain":"${domain}"`)).length;
  }

  async close(): Promise<void> {
    for (const r of this.redis.values()) r.disconnect();
    this.admin.disconnect();
    await this.bus.close({ keepSubscription: true });
    this.dynamo.destroy();
  }
}

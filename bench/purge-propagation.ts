// Purge propagation across three local regions: from publishing cache.purge to the first cache
// miss seen in each region (polled over HTTPS keep-alive every 2 ms).
//   npx tsx bench/purge-propagation.ts [--purges 100]
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { Announcer } from '../lib/core/bus/announcer.ts';
import { RedisStreamsBus } from '../lib/core/bus/redis/streams-bus.ts';
import { LocalKeyFileProvider } from '../lib/core/store/local-keys.ts';
import { Store } from '../lib/core/store/store.ts';
import { LocalRegions } from '../lib/local/regions.ts';
import { TestOrigin } from '../test/harness/origin.ts';
import { arg, percentile } from './replication/setup.ts';

const purges = arg('purges', 100);
const HOST = 'acme.platform.test';
const dir = mkdtempSync(join(tmpdir(), 'bench-purge-'));
const origin = new TestOrigin();
await origin.start();
origin.set('/page', { body: 'x'.repeat(2048), headers: { 'cache-control': 'max-age=3600' } });
const regions = await LocalRegions.start({
  dir,
  edge: { cache: { defaultTtlSeconds: 3600 } },
  logLevel: 'warn',
});
const dynamo = regions.dynalite.client();
const store = new Store({
  client: dynamo,
  tableName: regions.tableName,
  keys: await LocalKeyFileProvider.open(regions.keyFile),
});
const bus = new RedisStreamsBus({ redis: { port: regions.busRedisPort }, group: 'bench-publisher' });
const announcer = new Announcer(store, bus);

const agents = new Map(
  regions.regions.map((r) => [r.spec.name, new Agent({ keepAlive: true, maxSockets: 1 })]),
);
function cacheStatus(address: string, agent: Agent): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: address,
        port: regions.ports.https,
        path: '/page',
        servername: HOST,
        headers: { host: HOST },
        agent,
        rejectUnauthorized: false,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(String(res.headers['cache-status'] ?? '')));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

try {
  await announcer.upsertTenant('acme', { type: 'http', url: `http://127.0.0.1:${origin.port}` });
  for (const r of regions.regions) {
    const redis = new Redis({ host: r.spec.address, port: regions.ports.redis });
    while (!(await redis.exists('edge:@tenant:acme'))) await sleep(10);
    redis.disconnect();
  }
  const latencies = new Map<string, number[]>(regions.regions.map((r) => [r.spec.name, []]));
  for (let i = 0; i < purges; i++) {
    // Warm: every region answers from its cache.
    for (const r of regions.regions) {
      const agent = agents.get(r.spec.name) as Agent;
      while (!(await cacheStatus(r.spec.address, agent)).startsWith('edge; hit')) await sleep(1);
    }
    const t0 = performance.now();
    await announcer.purge({ scope: 'tenant', tenant: 'acme' });
    await Promise.all(
      regions.regions.map(async (r) => {
        const agent = agents.get(r.spec.name) as Agent;
        for (;;) {
          const status = await cacheStatus(r.spec.address, agent);
          if (status.startsWith('edge; fwd=miss')) break;
          if (performance.now() - t0 > 5000) throw new Error(`purge ${i} never reached ${r.spec.name}`);
          await sleep(2);
        }
        latencies.get(r.spec.name)?.push(performance.now() - t0);
      }),
    );
  }
  const all = [...latencies.values()].flat().sort((a, b) => a - b);
  const summary = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return {
      p50: +percentile(s, 50).toFixed(1),
      p99: +percentile(s, 99).toFixed(1),
      max: +(s.at(-1) ?? 0).toFixed(1),
    };
  };
  for (const [name, xs] of latencies) console.log(name, JSON.stringify(summary(xs)));
  console.log(
    JSON.stringify({
      bench: 'purge-propagation',
      purges,
      regions: regions.regions.length,
      ...summary(all),
      targetP99Ms: 250,
    }),
  );
} finally {
  for (const a of agents.values()) a.destroy();
  await bus.close({ keepSubscription: true });
  dynamo.destroy();
  await regions.stop();
  await origin.stop();
  rmSync(dir, { recursive: true, force: true });
}

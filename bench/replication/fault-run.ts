import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { Announcer } from '../../lib/core/bus/announcer.ts';
import { type FaultRates, seededRandom, withFaults } from '../../lib/core/bus/faults.ts';
import type { Bus, EventPublisher } from '../../lib/core/bus/port.ts';
import { RedisStreamsBus } from '../../lib/core/bus/redis/streams-bus.ts';
import type { EdgeEvent } from '../../lib/core/events/schema.ts';
import { type CertRecord, RedisKeys } from '../../lib/core/redis-format.ts';
import type { Store } from '../../lib/core/store/store.ts';
import { makeCertRecord } from '../../lib/local/self-signed-cert.ts';
import { Replica } from '../../lib/sidecars/listener-runtime/replica.ts';
import { RedisListener } from '../../lib/sidecars/redis-listener/service.ts';
import { SqsListener } from '../../lib/sidecars/sqs-listener/service.ts';

export interface FaultRunOptions {
  readonly store: Store;
  readonly redisPort: number;
  readonly durationMs: number;
  readonly regions?: number;
  readonly domains?: number;
  readonly faults?: FaultRates;
  readonly seed?: number;
  /** Operations per second (issue, revoke, restart a task). */
  readonly opsPerSecond?: number;
  readonly log?: (line: string) => void;
}

export interface FaultRunResult {
  readonly issued: number;
  readonly revoked: number;
  readonly restarts: number;
  readonly faults: { duplicated: number; reordered: number; dropped: number; delivered: number };
  /** Issued certificates the store does not hold (persistence lost them). */
  readonly lostInStore: number;
  /** (region, domain) pairs that differ from the store after the final reconcile. */
  readonly lostInRegions: number;
  /** Pairs that differed before it (events dropped and not yet repaired by a bootstrap). */
  readonly divergedBeforeReconcile: number;
  /** cert.issued announced more than once for one (domain, version): echoes. */
  readonly duplicateAnnouncements: number;
}

// Errors of the listeners go to stderr: a fault run should show why anything went missing.
const errors = pino({ level: 'error' }, pino.destination(2));

/**
 * The whole replication path in one process, under random faults: per region a Redis (a key
 * prefix), a RedisListener and an SqsListener on the real Redis Streams bus with duplicate,
 * reorder and drop injected before the applier; certificates written into random regions as an
 * issuer would; revocations; task restarts (empty Redis, new subscription, bootstrap).
 */
export async function faultRun(o: FaultRunOptions): Promise<FaultRunResult> {
  const random = seededRandom(o.seed ?? 1);
  const rates = o.faults ?? { duplicate: 0.1, reorder: 0.1, drop: 0.05 };
  const domains = Array.from({ length: o.domains ?? 40 }, (_, i) => `d${i}.fault.example.com`);
  const base = await makeCertRecord(['fault.example.com'], 30);
  const admin = new Redis({ port: o.redisPort });
  const stream = `fault:${Date.now()}`;
  const announced = new Map<string, number>();
  const publisher = new RedisStreamsBus({ redis: { port: o.redisPort }, stream, group: 'fault-publisher' });
  const counting: EventPublisher = {
    publish: async (e: EdgeEvent) => {
      if (e.type === 'cert.issued') {
        const k = `${e.payload.domain}@${e.version}`;
        announced.set(k, (announced.get(k) ?? 0) + 1);
      }
      await publisher.publish(e);
    },
  };
  const announcer = new Announcer(o.store, counting);
  const totals = { duplicated: 0, reordered: 0, dropped: 0, delivered: 0 };
  const maxIssued = new Map<string, number>();
  let expirySeq = base.expiry;
  let issued = 0;
  let revoked = 0;
  let restarts = 0;

  type Region = {
    prefix: string;
    redis: Redis;
    sub: Redis;
    replica: Replica;
    listener: RedisListener;
    sqs: SqsListener;
    bus: RedisStreamsBus;
    flush: () => Promise<void>;
    counts: typeof totals;
    busy: boolean;
  };
  let generation = 0;
  const startRegion = async (prefix: string): Promise<Region> => {
    const redis = new Redis({ port: o.redisPort });
    const sub = new Redis({ port: o.redisPort });
    sub.on('error', () => {});
    redis.on('error', () => {});
    const replica = new Replica(redis, new RedisKeys(prefix));
    const listener = new RedisListener({
      redis,
      subscriber: sub,
      replica,
      store: o.store,
      publisher: counting,
      log: errors,
    });
    await listener.start();
    const bus = new RedisStreamsBus({
      redis: { port: o.redisPort },
      stream,
      group: `${prefix}-${++generation}`,
      blockMs: 200,
      retryMs: 100,
    });
    let faulty: ReturnType<typeof withFaults> | undefined;
    // The bus with faults injected between delivery and the applier.
    const wrapped: Bus = {
      kind: bus.kind,
      subscriptionName: bus.subscriptionName,
      stats: bus.stats,
      publish: (e) => bus.publish(e),
      open: () => bus.open(),
      consume: (handler, consumeOpts) => {
        faulty = withFaults(handler, rates, random);
        return bus.consume(faulty.handler, consumeOpts);
      },
      close: (opts) => bus.close(opts),
      removeOrphans: () => bus.removeOrphans(),
    };
    const sqs = new SqsListener({
      bus: wrapped,
      store: o.store,
      redis,
      replica,
      edge: { purge: async () => {} },
      log: errors,
      bootstrap: { segments: 4, pageSize: 200 },
    });
    await sqs.start();
    return {
      prefix,
      redis,
      sub,
      replica,
      listener,
      sqs,
      bus,
      flush: async () => faulty?.flush(),
      get counts() {
        return faulty?.counts ?? { duplicated: 0, reordered: 0, dropped: 0, delivered: 0 };
      },
      busy: false,
    };
  };
  const stopRegion = async (r: Region) => {
    for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += r.counts[k];
    await r.sqs.stop();
    await r.listener.stop();
    r.sub.disconnect();
    r.redis.disconnect();
  };
  const wipe = async (prefix: string) => {
    const keys = await admin.keys(`${prefix}:*`);
    if (keys.length) await admin.del(...keys);
  };

  const names = Array.from({ length: o.regions ?? 3 }, (_, i) => `fr${i}`);
  for (const n of names) await wipe(n);
  const regions: Region[] = [];
  for (const n of names) regions.push(await startRegion(n));

  const started = Date.now();
  const interval = 1000 / (o.opsPerSecond ?? 20);
  let lastReport = started;
  while (Date.now() - started < o.durationMs) {
    const dice = random();
    const domain = domains[Math.floor(random() * domains.length)] as string;
    const ri = Math.floor(random() * regions.length);
    const region = regions[ri] as Region;
    if (dice < 0.8) {
      // An issuer (native or lua-resty-auto-ssl) writes a certificate newer than any before.
      expirySeq += 3600;
      const record: CertRecord = { ...base, expiry: expirySeq };
      await region.redis.set(region.replica.keys.cert(domain), JSON.stringify(record));
      maxIssued.set(domain, expirySeq);
      issued += 1;
    } else if (dice < 0.95) {
      // Let the redis-listener persist what it has before revoking, as an operator would.
      await region.listener.idle();
      if ((await announcer.revokeCert(domain, 'fault run')) !== undefined) revoked += 1;
    } else {
      // A task is replaced: new Redis (wiped), new subscription, bootstrap.
      await region.listener.idle();
      await stopRegion(region);
      await wipe(region.prefix);
      regions[ri] = await startRegion(region.prefix);
      restarts += 1;
    }
    if (o.log && Date.now() - lastReport > 10_000) {
      lastReport = Date.now();
      o.log(
        `${Math.round((Date.now() - started) / 1000)} s: ${issued} issued, ${revoked} revoked, ${restarts} restarts`,
      );
    }
    await sleep(interval);
  }

  // Drain: listeners idle, groups caught up, held (reordered) events released.
  for (let stable = 0; stable < 3; ) {
    await Promise.all(regions.map((r) => r.listener.idle()));
    await Promise.all(regions.map((r) => r.flush()));
    const groups = (await admin.xinfo('GROUPS', stream)) as unknown[][];
    const busy = groups.some(
      (g) => Number(g[g.indexOf('pending') + 1]) > 0 || Number(g[g.indexOf('lag') + 1]) > 0,
    );
    stable = busy ? 0 : stable + 1;
    await sleep(200);
  }

  const check = async (): Promise<number> => {
    let bad = 0;
    for (const domain of domains) {
      const stored = await o.store.getCert(domain);
      for (const r of regions) {
        const raw = await r.redis.get(r.replica.keys.cert(domain));
        const expiry = raw ? (JSON.parse(raw) as CertRecord).expiry : undefined;
        const want = stored?.state === 'live' ? stored.version : undefined;
        if (expiry !== want) bad += 1;
      }
    }
    return bad;
  };
  let lostInStore = 0;
  for (const [domain, expiry] of maxIssued) {
    const stored = await o.store.getCert(domain);
    if (!stored || stored.version !== expiry) lostInStore += 1;
  }
  const divergedBeforeReconcile = await check();
  // Reconcile: what a task replacement does, for every region.
  for (const [i, r] of regions.entries()) {
    await stopRegion(r);
    await wipe(r.prefix);
    regions[i] = await startRegion(r.prefix);
  }
  const lostInRegions = await check();
  for (const r of regions) await stopRegion(r);
  await publisher.close({ keepSubscription: true });
  await admin.del(stream, `${stream}:dead`, `${stream}:heartbeats`);
  for (const n of names) await wipe(n);
  admin.disconnect();
  return {
    issued,
    revoked,
    restarts,
    faults: totals,
    lostInStore,
    lostInRegions,
    divergedBeforeReconcile,
    duplicateAnnouncements: [...announced.values()].filter((n) => n > 1).length,
  };
}

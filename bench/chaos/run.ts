import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { TableCertificateReader } from '../../lib/control/certificates.ts';
import { ControlPlane } from '../../lib/control/control-plane.ts';
import type { DnsResolver } from '../../lib/control/dns/resolver.ts';
import { seededRandom } from '../../lib/core/bus/faults.ts';
import { RedisStreamsBus } from '../../lib/core/bus/redis/streams-bus.ts';
import { RedisKeys } from '../../lib/core/redis-format.ts';
import { LocalKeyFileProvider } from '../../lib/core/store/local-keys.ts';
import { Store } from '../../lib/core/store/store.ts';
import { LocalRegions } from '../../lib/local/regions.ts';
import { makeCertRecord } from '../../lib/local/self-signed-cert.ts';
import { BusChaos } from './bus-chaos.ts';
import { Churn } from './control.ts';
import { compareAll, type Difference } from './converge.ts';
import { diagnose } from './diagnose.ts';
import { type FaultKind, type FaultTarget, NginxWorker, Restartable } from './faults.ts';
import { Load } from './load.ts';
import { startOrigin } from './origin.ts';
import { percentile } from './stats.ts';

export interface ChaosOptions {
  readonly durationMs: number;
  readonly seed?: number;
  /** How long every region may take to match the table after a fault; default 60 s. */
  readonly convergenceDeadlineMs?: number;
  /** Time between faults, drawn uniformly from this range; default [3 s, 10 s]. */
  readonly faultIntervalMs?: readonly [number, number];
  /** How long a killed process stays down, drawn from this range; default [0.3 s, 3 s]. */
  readonly downMs?: readonly [number, number];
  /** Tenants (each with a custom domain and certificate) the load requests throughout; default 3. */
  readonly stableTenants?: number;
  readonly loadConcurrency?: number;
  /** Keep the run directory (logs of every process). */
  readonly keep?: boolean;
  readonly log?: (line: string) => void;
}

export interface FaultRecord {
  readonly kind: FaultKind;
  readonly target: string;
  /** Seconds since the start of the chaos phase. */
  readonly atS: number;
  readonly downMs: number;
  /** Time the process took to come back (nginx: the master's respawn). */
  readonly restartMs: number;
  /** From the restart until every region matched the table; undefined when it did not. */
  readonly convergedMs?: number;
  readonly error?: string;
  /** What still differed at the deadline. */
  readonly differences?: readonly Difference[];
  /** The bus's groups, dead letters and the listeners' counters at the deadline. */
  readonly diagnosis?: readonly string[];
}

export interface ChaosReport {
  readonly seed: number;
  readonly chaosSeconds: number;
  readonly startupSeconds: number;
  readonly faults: readonly FaultRecord[];
  /** Per fault kind: count, convergence p50/p99/max (ms), how many never converged. */
  readonly convergence: Record<
    string,
    { count: number; p50: number; p99: number; max: number; notConverged: number }
  >;
  readonly requests: {
    total: number;
    ok: number;
    failed: number;
    byKind: Record<string, number>;
    /**
     * 404s: all unexpected, since the load asks only for the stable tenants' hosts, which the run
     * changes and purges but never removes (a 404 there is a region that forgot a live record).
     */
    notFound: number;
  };
  readonly churn: Churn['counts'];
  readonly bus: BusChaos['counts'];
  /** Every region matched the table at the end (within the deadline). */
  readonly converged: boolean;
  readonly finalConvergenceMs?: number;
  /** Certificates in the table missing or older in some region after convergence, per (region, domain). */
  readonly certificatesLost: number;
  /** Certificates an issuer wrote that never reached the table (lost with a killed Redis before persisting). */
  readonly issuedNotPersisted: number;
  /** Purge fields whose generation in some region is below the table's after convergence, per region. */
  readonly purgesLost: number;
  readonly finalDifferences: readonly Difference[];
  readonly finalDiagnosis?: readonly string[];
  readonly dir?: string;
}

/** Answers nothing: the run adds domains with the DNS check skipped. */
const noDns: DnsResolver = {
  resolveCname: async () => [],
  resolve4: async () => [],
  resolve6: async () => [],
  resolveTxt: async () => [],
  resolveCaa: async () => [],
};

/**
 * The chaos run: three local regions under steady HTTPS load while processes are killed -9 and
 * restarted at random, events are duplicated and reordered on the bus and the control plane
 * changes tenants, domains and purges; after each fault, and at the end, every region's Redis is
 * compared with the table.
 */
export async function chaosRun(o: ChaosOptions): Promise<ChaosReport> {
  const seed = o.seed ?? Date.now() % 100_000;
  const random = seededRandom(seed);
  const log = o.log ?? (() => {});
  const between = ([lo, hi]: readonly [number, number]) => lo + random() * (hi - lo);
  const deadlineMs = o.convergenceDeadlineMs ?? 60_000;
  const t0 = Date.now();
  const dir = await mkdtemp(join(tmpdir(), 'chaos-'));
  const cleanup: (() => Promise<unknown>)[] = [];
  // Logs of every process stay when asked, or when the regions did not converge.
  let keepDir = o.keep ?? false;
  try {
    const origin = await startOrigin(dir);
    const originTarget = new Restartable('origin', 'origin', origin.process);
    cleanup.push(() => originTarget.current.stop());
    // The load is every user at once from one address: no per-address rate limit.
    const regions = await LocalRegions.start({
      dir,
      logLevel: 'warn',
      edge: { limits: { requestsPerSecondPerIp: 0 } },
    });
    cleanup.push(() => regions.stop());
    const keys = new RedisKeys(regions.redisPrefix);

    // Clients: the table, the control plane on the bus, each region's Redis.
    const dynamo = regions.dynalite.client();
    cleanup.push(async () => dynamo.destroy());
    const store = new Store({
      client: dynamo,
      tableName: regions.tableName,
      keys: await LocalKeyFileProvider.open(regions.keyFile),
    });
    const bus = new RedisStreamsBus({ redis: { port: regions.busRedisPort }, group: 'chaos-control' });
    cleanup.push(() => bus.close({ keepSubscription: true }));
    const cp = new ControlPlane({
      store,
      bus,
      resolver: noDns,
      certificates: new TableCertificateReader(dynamo, regions.tableName),
    });
    const redisOf = regions.regions.map((r) => {
      const redis = new Redis({
        host: r.spec.address,
        port: regions.ports.redis,
        maxRetriesPerRequest: 1,
        retryStrategy: () => 200,
      });
      redis.on('error', () => {});
      cleanup.push(async () => redis.disconnect());
      return { name: r.spec.name, redis };
    });

    // Issuance as a region's issuer does it: the certificate written into that region's Redis
    // (the redis-listener persists and announces it). A region whose Redis is down is skipped.
    const issued = new Map<string, number>();
    const issue = async (domain: string) => {
      const record = await makeCertRecord([domain], 30 + Math.floor(random() * 60));
      const start = Math.floor(random() * redisOf.length);
      for (let i = 0; i < redisOf.length; i++) {
        const r = redisOf[(start + i) % redisOf.length];
        try {
          await r?.redis.set(keys.cert(domain), JSON.stringify(record));
          issued.set(domain, record.expiry);
          return;
        } catch {}
      }
      throw new Error(`no region's Redis took the certificate for ${domain}`);
    };

    // What the load requests: stable tenants, each on its platform subdomain and a custom domain.
    const stable = Array.from({ length: o.stableTenants ?? 3 }, (_, i) => `s${i}`);
    for (const id of stable) {
      await cp.tenants.add(id, { type: 'http', url: origin.url });
      await cp.domains.add(`www.${id}.chaos.test`, id, { skipDnsCheck: true, preverified: true });
      await issue(`www.${id}.chaos.test`);
    }
    const hosts = stable.flatMap((id) => [`${id}.platform.test`, `www.${id}.chaos.test`]);
    const diffs = () => compareAll(store, keys, redisOf).catch((err: Error) => [unreachable(err)]);
    const waitConverged = async (ms: number): Promise<{ ms?: number; left: Difference[] }> => {
      const start = Date.now();
      for (;;) {
        const left = await diffs();
        if (left.length === 0) return { ms: Date.now() - start, left };
        if (Date.now() - start > ms) return { left };
        await sleep(100);
      }
    };
    const initial = await waitConverged(30_000);
    if (initial.ms === undefined)
      throw new Error(`the regions did not converge before the run: ${show(initial.left)}`);

    // Everything a fault may hit.
    const targets: FaultTarget[] = [
      originTarget,
      new Restartable('bus-redis', 'bus-redis', regions.busRedis),
    ];
    for (const r of regions.regions) {
      const n = r.spec.name;
      targets.push(
        new Restartable('region-redis', `redis:${n}`, r.redis),
        new Restartable('sqs-listener', `sqs-listener:${n}`, r.sqsListener),
        new Restartable('redis-listener', `redis-listener:${n}`, r.redisListener),
        new NginxWorker(`nginx-worker:${n}`, () => r.edge.process.pid, random),
      );
    }
    // Restarted processes are the run's to stop; the killed originals are no-ops for regions.stop().
    cleanup.push(() =>
      Promise.all(targets.map((t) => (t instanceof Restartable ? t.current.stop() : undefined))),
    );
    const kinds = [...new Set(targets.map((t) => t.kind))];
    const listeners = regions.regions.map((r) => ({
      name: r.spec.name,
      address: r.spec.address,
      port: regions.ports.sqsListenerHealth,
    }));
    const startupSeconds = (Date.now() - t0) / 1000;
    log(`started in ${startupSeconds.toFixed(1)} s (seed ${seed}); fault kinds: ${kinds.join(', ')}`);

    let phase = 'none';
    const load = new Load({
      targets: regions.regions.map((r) => ({ address: r.spec.address, port: regions.ports.https })),
      hosts: () => hosts,
      concurrency: o.loadConcurrency ?? 4,
      phase: () => phase,
      random,
    });
    const busChaos = new BusChaos(regions.busRedisPort, random, 1000);
    const churn = new Churn(cp, origin.url, stable, issue, random);
    load.start();
    busChaos.start();

    // Control-plane changes run in the background until paused for a convergence measurement.
    let churning = false;
    let churnLoop: Promise<void> = Promise.resolve();
    const startChurn = () => {
      churning = true;
      churnLoop = (async () => {
        while (churning) {
          await churn.step();
          await sleep(between([100, 600]));
        }
      })();
    };
    const stopChurn = async () => {
      churning = false;
      await churnLoop;
    };

    const faults: FaultRecord[] = [];
    const deck: FaultKind[] = [];
    const chaosStart = Date.now();
    while (Date.now() - chaosStart < o.durationMs) {
      startChurn();
      await sleep(between(o.faultIntervalMs ?? [3000, 10_000]));
      // Each kind equally often, in random order: a short run still hits every kind.
      if (deck.length === 0) deck.push(...shuffle(kinds, random));
      const kind = deck.pop() as FaultKind;
      const ofKind = targets.filter((t) => t.kind === kind);
      const target = ofKind[Math.floor(random() * ofKind.length)] as FaultTarget;
      const atS = (Date.now() - chaosStart) / 1000;
      phase = kind;
      const downMs = target.kind === 'nginx-worker' ? 0 : between(o.downMs ?? [300, 3000]);
      let restartMs = 0;
      try {
        await target.kill();
        await sleep(downMs);
        const r0 = Date.now();
        await target.restart();
        restartMs = Date.now() - r0;
      } catch (err) {
        faults.push({ kind, target: target.name, atS, downMs, restartMs, error: (err as Error).message });
        log(`${atS.toFixed(0)} s: ${target.name}: ${(err as Error).message}`);
        await stopChurn();
        phase = 'none';
        continue;
      }
      await stopChurn();
      const c = await waitConverged(deadlineMs);
      const convergedMs = c.ms === undefined ? undefined : restartMs + c.ms;
      if (c.ms === undefined) keepDir = true;
      faults.push({
        kind,
        target: target.name,
        atS,
        downMs: Math.round(downMs),
        restartMs,
        convergedMs,
        differences: c.ms === undefined ? c.left.slice(0, 20) : undefined,
        diagnosis: c.ms === undefined ? await diagnose(regions.busRedisPort, listeners) : undefined,
      });
      log(
        `${atS.toFixed(0)} s: ${target.name} killed -9, down ${Math.round(downMs)} ms, back in ${restartMs} ms, ` +
          (convergedMs === undefined
            ? `NOT CONVERGED after ${deadlineMs} ms: ${show(c.left)}`
            : `converged ${convergedMs} ms after the restart`),
      );
      phase = 'none';
    }
    const chaosSeconds = (Date.now() - chaosStart) / 1000;

    // The end: no more changes; every region must match the table.
    await stopChurn();
    const final = await waitConverged(deadlineMs);
    const finalDiagnosis =
      final.ms === undefined ? await diagnose(regions.busRedisPort, listeners) : undefined;
    if (final.ms === undefined) keepDir = true;
    const bus_ = await busChaos.stop();
    const requests = await load.stop();
    let issuedNotPersisted = 0;
    for (const [domain, expiry] of issued) {
      const stored = await store.getCert(domain);
      if (!stored || stored.version < expiry) issuedNotPersisted += 1;
    }
    const finalDifferences = final.left;
    const convergence: ChaosReport['convergence'] = {};
    for (const kind of kinds) {
      const of = faults.filter((f) => f.kind === kind);
      const ms = of.flatMap((f) => (f.convergedMs === undefined ? [] : [f.convergedMs]));
      convergence[kind] = {
        count: of.length,
        p50: percentile(ms, 50),
        p99: percentile(ms, 99),
        max: ms.length ? Math.max(...ms) : Number.NaN,
        notConverged: of.filter((f) => f.convergedMs === undefined).length,
      };
    }
    const failed = Object.values(requests.failed).reduce((a, b) => a + b, 0);
    return {
      seed,
      chaosSeconds,
      startupSeconds,
      faults,
      convergence,
      requests: {
        total: requests.requests,
        ok: requests.ok,
        failed,
        byKind: requests.failed,
        notFound: Object.entries(requests.failed)
          .filter(([k]) => / http 404\b/.test(k))
          .reduce((a, [, n]) => a + n, 0),
      },
      churn: churn.counts,
      bus: bus_,
      converged: final.ms !== undefined,
      finalConvergenceMs: final.ms,
      certificatesLost: finalDifferences.filter((d) => d.kind === 'cert').length,
      issuedNotPersisted,
      purgesLost: finalDifferences.filter((d) => d.kind === 'purge').length,
      finalDifferences,
      finalDiagnosis,
      dir: keepDir ? dir : undefined,
    };
  } finally {
    for (const fn of cleanup.reverse()) await fn().catch(() => {});
    if (!keepDir) await rm(dir, { recursive: true, force: true });
  }
}

function shuffle<T>(xs: readonly T[], random: () => number): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

function unreachable(err: Error): Difference {
  return { region: '?', kind: 'tenant', key: '', what: `comparison failed: ${err.message}` };
}

function show(diffs: readonly Difference[]): string {
  const head = diffs.slice(0, 5).map((d) => `${d.region} ${d.key} ${d.what}`);
  return `${diffs.length} differences (${head.join('; ')}${diffs.length > 5 ? '; …' : ''})`;
}

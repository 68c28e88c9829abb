import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Bus } from '../../core/bus/port.ts';
import { entityOf } from '../../core/events/codec.ts';
import type { EdgeEvent } from '../../core/events/schema.ts';
import type { Store } from '../../core/store/store.ts';
import type { Replica } from '../listener-runtime/replica.ts';
import { Applier, type ApplyResult, type Purger } from './apply.ts';
import { type BootstrapOptions, type BootstrapResult, bootstrap } from './bootstrap.ts';
import { EntityLanes } from './lanes.ts';

/** Why the task's Redis was (re)filled from the table. */
export type BootstrapReason = 'start' | 'redis restarted' | 'redis lost data' | 'bus gap';

/** What /readyz reports: whether this task can do its job now (not whether the process lives). */
export interface Readiness {
  readonly ready: boolean;
  /** The task's Redis holds the whole state (bootstrapped since its last restart or data loss). */
  readonly redis: boolean;
  /** The bus delivers: the last receive succeeded recently. */
  readonly bus: boolean;
  /** The table answered the last probe (or bootstrap). */
  readonly table: boolean;
  readonly reasons: readonly string[];
}

export interface ConvergenceOptions {
  /** How often the task's Redis is checked for a restart or data loss; default 1000 ms. */
  readonly watchMs?: number;
  /** How often the table is probed for readiness; default 15 000 ms. */
  readonly tableProbeMs?: number;
  /** The bus counts as delivering when a receive succeeded this recently; default 60 000 ms. */
  readonly busStaleMs?: number;
  /** First delay between failed bootstraps (doubling up to 30 s); default 1000 ms. */
  readonly retryMs?: number;
}

export interface SqsListenerDeps {
  readonly bus: Bus;
  readonly store: Store;
  readonly redis: Redis;
  readonly replica: Replica;
  readonly edge: Purger;
  readonly log: Logger;
  readonly bootstrap?: BootstrapOptions;
  readonly orphanSweepMs?: number;
  readonly convergence?: ConvergenceOptions;
  /** Called after every successful bootstrap (the first one opens the edge's start gate). */
  readonly onReady?: (result: BootstrapResult, reason: BootstrapReason) => void;
  /** Called when readiness changes. */
  readonly onReadiness?: (r: Readiness) => void;
}

/** Counters for /metrics. */
export interface ListenerCounters {
  readonly bootstraps: Map<BootstrapReason, number>;
  bootstrapFailures: number;
  readonly events: Map<ApplyResult | 'failed', number>;
}

/**
 * Subscribes first (so nothing published during the bootstrap is lost), bootstraps the task's
 * Redis from the store, reports ready, then applies events as they come: concurrently across
 * entities, in order within one (lanes.ts), so an event stuck on one tenant never holds back
 * another's purge.
 *
 * Convergence: the task's Redis has no persistence, so a restart (new run id) or a flush (the
 * sentinel key written after each bootstrap is gone) means it lost the state: it is bootstrapped
 * again, while the edge serves the copies it holds. A bus that lost this task's subscription
 * (events may be missing) triggers a bootstrap too. A failed bootstrap is retried with backoff,
 * never fatal: the process stays alive and does its job once its dependencies return.
 */
export class SqsListener {
  readonly bus: Bus;
  readonly counters: ListenerCounters = { bootstraps: new Map(), bootstrapFailures: 0, events: new Map() };
  private readonly applier: Applier;
  private readonly lanes = new EntityLanes();
  private readonly sentinelKey: string;
  private sweep: NodeJS.Timeout | undefined;
  private watch: NodeJS.Timeout | undefined;
  private probe: NodeJS.Timeout | undefined;
  private stopping = false;
  /** The run id of the task's Redis the current state was bootstrapped into. */
  private runId: string | undefined;
  private redisOk = false;
  private tableOk = false;
  private bootstrapping: Promise<void> | undefined;
  private again: BootstrapReason | undefined;
  private lastReadiness: Readiness | undefined;
  private notReadyLoggedMs = 0;

  constructor(private readonly deps: SqsListenerDeps) {
    this.bus = deps.bus;
    this.applier = new Applier(deps.replica, deps.store, deps.edge, (obj, msg) => deps.log.warn(obj, msg));
    this.sentinelKey = `${deps.replica.keys.prefix}:@bootstrapped`;
  }

  /** Resolves once the first bootstrap succeeded and events flow; retries until then. */
  async start(): Promise<BootstrapResult> {
    const { bus, log } = this.deps;
    await this.retrying('subscribe', () => bus.open());
    log.info({ subscription: bus.subscriptionName, bus: bus.kind }, 'subscribed');
    this.sweepOrphans();
    const result = await this.retrying('bootstrap', () => this.bootstrapOnce('start'));
    if (this.stopping) return result;
    await bus.consume((event) => this.handle(event), {
      onResubscribed: () => this.rebootstrap('bus gap'),
    });
    const c = this.deps.convergence ?? {};
    this.watch = setInterval(() => void this.checkRedis(), c.watchMs ?? 1000);
    this.watch.unref();
    this.probe = setInterval(() => void this.probeTable(), c.tableProbeMs ?? 15_000);
    this.probe.unref();
    if (this.deps.orphanSweepMs) {
      this.sweep = setInterval(() => this.sweepOrphans(), this.deps.orphanSweepMs);
      this.sweep.unref();
    }
    this.report();
    return result;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const t of [this.sweep, this.watch, this.probe]) if (t) clearInterval(t);
    await this.deps.bus.close();
    await this.bootstrapping?.catch(() => {});
  }

  get busy(): number {
    return this.lanes.size;
  }

  readiness(): Readiness {
    const stats = this.deps.bus.stats;
    const staleMs = this.deps.convergence?.busStaleMs ?? 60_000;
    const bus = stats.lastError === undefined && Date.now() - stats.lastReceiveOkMs < staleMs;
    const redis = this.redisOk && !this.bootstrapping;
    const reasons: string[] = [];
    if (!redis) reasons.push(this.bootstrapping ? 'redis: bootstrapping' : 'redis: not bootstrapped');
    if (!bus) reasons.push(`bus: ${stats.lastError ?? 'no receive lately'}`);
    if (!this.tableOk) reasons.push('table: unreachable');
    return { ready: !this.stopping && reasons.length === 0, redis, bus, table: this.tableOk, reasons };
  }

  private async handle(event: EdgeEvent): Promise<void> {
    await this.lanes.run(entityOf(event), async () => {
      let result: ApplyResult;
      try {
        result = await this.applier.apply(event);
      } catch (err) {
        this.count('failed');
        throw err;
      }
      this.count(result);
      this.deps.log.info({ id: event.id, type: event.type, version: event.version, result }, 'event applied');
    });
  }

  private count(result: ApplyResult | 'failed'): void {
    this.counters.events.set(result, (this.counters.events.get(result) ?? 0) + 1);
  }

  /** Runs fn until it succeeds (or the listener stops), backing off; failures are logged and counted. */
  private async retrying<T>(what: string, fn: () => Promise<T>): Promise<T> {
    let delay = this.deps.convergence?.retryMs ?? 1000;
    for (;;) {
      try {
        return await fn();
      } catch (err) {
        if (this.stopping) throw err;
        this.deps.log.error({ err, retryInMs: delay }, `${what} failed; retrying`);
        this.report();
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 30_000);
      }
    }
  }

  private async bootstrapOnce(reason: BootstrapReason): Promise<BootstrapResult> {
    const { redis, store, replica, log } = this.deps;
    const before = await this.redisRunId();
    let result: BootstrapResult;
    try {
      log.info({ reason }, 'bootstrapping the task redis');
      result = await bootstrap(store, redis, replica, log, this.deps.bootstrap);
    } catch (err) {
      this.counters.bootstrapFailures += 1;
      if (!(await this.tableReachable())) this.tableOk = false;
      throw err;
    }
    this.tableOk = true;
    // Restarted while we filled it: what we wrote before the restart is gone.
    if ((await this.redisRunId()) !== before)
      throw new Error('the task redis restarted during the bootstrap');
    await redis.set(this.sentinelKey, JSON.stringify({ runId: before, at: Date.now(), reason }));
    this.runId = before;
    this.redisOk = true;
    this.counters.bootstraps.set(reason, (this.counters.bootstraps.get(reason) ?? 0) + 1);
    this.deps.onReady?.(result, reason);
    return result;
  }

  /** Bootstraps again, once at a time; a request while one runs makes it run once more after. */
  private rebootstrap(reason: BootstrapReason): void {
    if (this.stopping) return;
    if (this.bootstrapping) {
      this.again = reason;
      return;
    }
    this.deps.log.warn({ reason }, 'task redis out of step with the table; bootstrapping again');
    this.bootstrapping = this.retrying('bootstrap', () => this.bootstrapOnce(reason))
      .then(
        () => {},
        () => {},
      )
      .finally(() => {
        this.bootstrapping = undefined;
        this.report();
        const next = this.again;
        this.again = undefined;
        if (next) this.rebootstrap(next);
      });
    this.report();
  }

  /** The watch: a new run id or a missing sentinel means the task's Redis lost what it held. */
  private async checkRedis(): Promise<void> {
    if (this.stopping || this.bootstrapping) return;
    try {
      const [runId, sentinel] = await Promise.all([
        this.redisRunId(),
        this.deps.redis.exists(this.sentinelKey),
      ]);
      if (runId !== this.runId) {
        this.redisOk = false;
        this.rebootstrap('redis restarted');
      } else if (sentinel === 0) {
        this.redisOk = false;
        this.rebootstrap('redis lost data');
      }
    } catch (err) {
      if (this.redisOk) this.deps.log.warn({ err }, 'task redis unreachable');
      this.redisOk = false;
    }
    this.report();
  }

  private async probeTable(): Promise<void> {
    this.tableOk = await this.tableReachable();
    this.report();
  }

  private async tableReachable(): Promise<boolean> {
    try {
      await this.deps.store.getTenant('@readyz-probe');
      return true;
    } catch {
      return false;
    }
  }

  private async redisRunId(): Promise<string> {
    const info = await this.deps.redis.info('server');
    const m = /^run_id:(\w+)/m.exec(info);
    if (!m?.[1]) throw new Error('the task redis reported no run_id');
    return m[1];
  }

  /** Publishes readiness on change, with one structured log line an alarm can count. */
  private report(): void {
    if (this.stopping) return;
    const r = this.readiness();
    const prev = this.lastReadiness;
    this.lastReadiness = r;
    const changed = !prev || prev.ready !== r.ready || prev.reasons.join() !== r.reasons.join();
    // While not ready, repeated once a minute: the readiness alarm counts these lines.
    const remind = !r.ready && Date.now() - this.notReadyLoggedMs >= 60_000;
    if (!changed && !remind) return;
    if (r.ready) {
      this.deps.log.info({ event: 'listener_ready' }, 'ready');
    } else {
      this.notReadyLoggedMs = Date.now();
      this.deps.log.warn({ event: 'listener_not_ready', reasons: r.reasons }, 'not ready');
    }
    if (changed) this.deps.onReadiness?.(r);
  }

  private sweepOrphans(): void {
    this.deps.bus.removeOrphans().catch((err) => this.deps.log.warn({ err }, 'orphan sweep failed'));
  }
}

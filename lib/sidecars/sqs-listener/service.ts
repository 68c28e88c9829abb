import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Bus } from '../../core/bus/port.ts';
import type { EdgeEvent } from '../../core/events/schema.ts';
import type { Store } from '../../core/store/store.ts';
import type { Replica } from '../listener-runtime/replica.ts';
import { Applier, type Purger } from './apply.ts';
import { type BootstrapOptions, type BootstrapResult, bootstrap } from './bootstrap.ts';

export interface SqsListenerDeps {
  readonly bus: Bus;
  readonly store: Store;
  readonly redis: Redis;
  readonly replica: Replica;
  readonly edge: Purger;
  readonly log: Logger;
  readonly bootstrap?: BootstrapOptions;
  readonly orphanSweepMs?: number;
  /** Called once the task's Redis holds the whole state. */
  readonly onReady?: (result: BootstrapResult) => void;
}

/**
 * Subscribes first (so nothing published during the bootstrap is lost), bootstraps the task's
 * Redis from the store, reports ready, then applies events as they come.
 */
export class SqsListener {
  private readonly applier: Applier;
  private sweep: NodeJS.Timeout | undefined;
  private inFlight = 0;

  constructor(private readonly deps: SqsListenerDeps) {
    this.applier = new Applier(deps.replica, deps.store, deps.edge, (obj, msg) => deps.log.warn(obj, msg));
  }

  async start(): Promise<BootstrapResult> {
    const { bus, log } = this.deps;
    await bus.open();
    log.info({ subscription: bus.subscriptionName, bus: bus.kind }, 'subscribed');
    this.sweepOrphans();
    let result: BootstrapResult;
    try {
      result = await bootstrap(this.deps.store, this.deps.redis, this.deps.replica, log, this.deps.bootstrap);
    } catch (err) {
      // No half-filled task: drop the subscription and let the orchestrator start a new one.
      await bus.close().catch(() => {});
      throw err;
    }
    this.deps.onReady?.(result);
    await bus.consume((event) => this.handle(event));
    if (this.deps.orphanSweepMs) {
      this.sweep = setInterval(() => this.sweepOrphans(), this.deps.orphanSweepMs);
      this.sweep.unref();
    }
    return result;
  }

  async stop(): Promise<void> {
    if (this.sweep) clearInterval(this.sweep);
    await this.deps.bus.close();
  }

  get busy(): number {
    return this.inFlight;
  }

  private async handle(event: EdgeEvent): Promise<void> {
    this.inFlight += 1;
    try {
      const result = await this.applier.apply(event);
      this.deps.log.info({ id: event.id, type: event.type, version: event.version, result }, 'event applied');
    } finally {
      this.inFlight -= 1;
    }
  }

  private sweepOrphans(): void {
    this.deps.bus.removeOrphans().catch((err) => this.deps.log.warn({ err }, 'orphan sweep failed'));
  }
}

import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';

export interface BusChaosCounts {
  /** Recent events published again. */
  duplicated: number;
  /** Older events published again after newer ones of the same entities (out-of-order versions). */
  reordered: number;
}

/**
 * Duplicates and reorders events on the Redis bus, as at-least-once delivery may: copies of
 * recent entries appended again, and older entries appended after everything that followed them.
 */
export class BusChaos {
  readonly counts: BusChaosCounts = { duplicated: 0, reordered: 0 };
  private readonly redis: Redis;
  private running = false;
  private loop: Promise<void> | undefined;

  constructor(
    port: number,
    private readonly random: () => number,
    private readonly intervalMs: number,
    private readonly stream = 'edge:events',
  ) {
    this.redis = new Redis({ port, maxRetriesPerRequest: 1, lazyConnect: true });
    this.redis.on('error', () => {});
  }

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<BusChaosCounts> {
    this.running = false;
    await this.loop;
    this.redis.disconnect();
    return this.counts;
  }

  private async run(): Promise<void> {
    while (this.running) {
      await sleep(this.intervalMs * (0.5 + this.random()));
      try {
        const recent = (await this.redis.xrevrange(this.stream, '+', '-', 'COUNT', 20)) as Entry[];
        const dup = recent[Math.floor(this.random() * recent.length)];
        if (dup) {
          await this.append(dup);
          this.counts.duplicated += 1;
        }
        const early = (await this.redis.xrange(this.stream, '-', '+', 'COUNT', 200)) as Entry[];
        // Something not among the newest: an older version arriving after the newer ones.
        const old = early.slice(0, Math.max(0, early.length - 20));
        const late = old[Math.floor(this.random() * old.length)];
        if (late) {
          await this.append(late);
          this.counts.reordered += 1;
        }
      } catch {
        // The bus is down (a fault of its own): nothing to duplicate now.
      }
    }
  }

  private async append([, fields]: Entry): Promise<void> {
    await this.redis.xadd(this.stream, 'MAXLEN', '~', '100000', '*', ...fields);
  }
}

type Entry = [id: string, fields: string[]];

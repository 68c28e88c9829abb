import { Redis, type RedisOptions } from 'ioredis';
import { encodeEvent } from '../../events/codec.ts';
import type { EdgeEvent } from '../../events/schema.ts';
import { dispatch } from '../dispatch.ts';
import { BusError } from '../errors.ts';
import {
  type Bus,
  type BusLogger,
  type ConsumeOptions,
  DEFAULTS,
  type EventHandler,
  newBusStats,
  type SubscriptionOptions,
  silentLogger,
} from '../port.ts';

export interface RedisStreamsBusOptions extends SubscriptionOptions {
  readonly redis: RedisOptions;
  /** The stream every event is appended to; default `edge:events`. */
  readonly stream?: string;
  /** This task's consumer group (one group per task, so every task sees every event). */
  readonly group: string;
  /** Approximate stream length kept; default 100 000. */
  readonly maxLen?: number;
  /** How long one blocking read waits; bounds how long close() takes. Default 1000 ms. */
  readonly blockMs?: number;
  /** Delay before a failed event is delivered again; default 2000 ms. */
  readonly retryMs?: number;
  /**
   * A publish is confirmed once the entry is appended and at least one consumer group reads the
   * stream; with none (the bus restarted and no task has recreated its group yet) the publisher
   * waits this long for one, then fails. Default 5000 ms.
   */
  readonly confirmWithinMs?: number;
  /** Entries handed to the handler at once; default 64. */
  readonly maxInFlight?: number;
  /**
   * How often this group's own pending entries are read again even when no delivery failed:
   * entries a killed consumer of the same group left unacknowledged, or whose read reply was lost
   * with the connection. Also done once at the start of consume. Default 30 000 ms.
   */
  readonly pendingSweepMs?: number;
}

/** The entry was appended but no task reads the stream: nobody would ever apply it. */
export class NoSubscriberError extends BusError {
  override name = 'NoSubscriberError';
}

type Entry = [id: string, fields: string[] | null];

/** The bus on Redis Streams: XADD to publish, a consumer group per task, `<stream>:dead` for rejects. */
export class RedisStreamsBus implements Bus {
  readonly kind = 'redis';
  readonly subscriptionName: string;
  readonly stats = newBusStats();
  private readonly stream: string;
  private readonly dead: string;
  private readonly heartbeats: string;
  private readonly cmd: Redis;
  private reader: Redis | undefined;
  private readonly log: BusLogger;
  private readonly maxAttempts: number;
  private readonly attempts = new Map<string, number>();
  private heartbeat: NodeJS.Timeout | undefined;
  private loop: Promise<void> | undefined;
  private stopping = false;
  private readonly inFlight = new Map<string, Promise<void>>();
  /** The newest entry this group was given: where a group lost with the bus is recreated. */
  private lastId = '0';

  constructor(private readonly opts: RedisStreamsBusOptions) {
    if (!/^[\w:.-]{1,200}$/.test(opts.group))
      throw new BusError(`invalid consumer group name: "${opts.group}"`);
    this.stream = opts.stream ?? 'edge:events';
    this.dead = `${this.stream}:dead`;
    this.heartbeats = `${this.stream}:heartbeats`;
    this.subscriptionName = opts.group;
    this.log = opts.logger ?? silentLogger;
    this.maxAttempts = opts.maxAttempts ?? DEFAULTS.maxAttempts;
    this.cmd = new Redis({ ...opts.redis, lazyConnect: true });
    this.cmd.on('error', (err) => this.log.warn({ err }, 'bus redis error'));
  }

  async publish(event: EdgeEvent): Promise<void> {
    await this.publishRaw(encodeEvent(event), event.type);
  }

  /**
   * Appends a body as is (tests use it to send malformed events); resolves once Redis returned the
   * entry's id and some consumer group reads the stream (see confirmWithinMs).
   */
  async publishRaw(body: string, type = 'unknown'): Promise<string> {
    await this.connect();
    const id = await this.cmd.xadd(
      this.stream,
      'MAXLEN',
      '~',
      this.opts.maxLen ?? 100_000,
      '*',
      'type',
      type,
      'body',
      body,
    );
    if (!id) throw new BusError(`XADD to ${this.stream} returned no id`);
    const deadline = Date.now() + (this.opts.confirmWithinMs ?? 5000);
    // Consumers recreate a lost group at the last entry they saw, so this one still reaches them.
    while ((await this.groupCount()) === 0) {
      if (Date.now() >= deadline) {
        throw new NoSubscriberError(
          `event ${id} was appended to ${this.stream} but no consumer group reads it: no task receives events`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return id;
  }

  private async groupCount(): Promise<number> {
    const groups = (await this.cmd.xinfo('GROUPS', this.stream).catch(() => [])) as unknown[];
    return groups.length;
  }

  async open(): Promise<void> {
    await this.connect();
    // The heartbeat first, so a sweeper never sees this group without one.
    await this.beat();
    await this.createGroup('$');
    this.lastId = await this.groupLastId();
    this.heartbeat = setInterval(() => {
      this.beat().catch((err) => this.log.warn({ err }, 'bus heartbeat failed'));
    }, this.opts.heartbeatMs ?? DEFAULTS.heartbeatMs);
    this.heartbeat.unref();
  }

  async consume(handler: EventHandler, opts: ConsumeOptions = {}): Promise<void> {
    if (this.loop) throw new BusError('already consuming');
    this.reader = new Redis({ ...this.opts.redis, lazyConnect: true });
    this.reader.on('error', (err) => this.log.warn({ err }, 'bus reader redis error'));
    await this.reader.connect();
    this.loop = this.run(this.reader, handler, opts);
  }

  private async createGroup(from: string): Promise<void> {
    try {
      await this.cmd.xgroup('CREATE', this.stream, this.opts.group, from, 'MKSTREAM');
    } catch (err) {
      if (!String((err as Error).message).includes('BUSYGROUP')) throw err;
    }
  }

  private async groupLastId(): Promise<string> {
    const groups = (await this.cmd.xinfo('GROUPS', this.stream)) as unknown[][];
    const mine = groups.find((g) => String(g[1]) === this.opts.group);
    return mine ? (field(mine.map(String), 'last-delivered-id') ?? '0') : '0';
  }

  /**
   * The group (or the whole stream) is gone: the bus Redis restarted, or a sweeper removed it.
   * Recreated at the last entry this task was given, so whatever was appended since (a purge sent
   * right after the restart) is still delivered; entries this task had pending are lost with the
   * group, and so may be entries the restart lost: the owner repairs from the table.
   */
  private async resubscribe(opts: ConsumeOptions, reason: string): Promise<void> {
    await this.beat();
    await this.createGroup(this.lastId);
    this.attempts.clear();
    this.stats.resubscribed += 1;
    this.log.warn({ group: this.opts.group, from: this.lastId, reason }, 'consumer group recreated');
    opts.onResubscribed?.(reason);
  }

  async close(opts: { keepSubscription?: boolean } = {}): Promise<void> {
    this.stopping = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    await this.loop?.catch((err) => this.log.error({ err }, 'bus consumer loop failed'));
    // In-flight events finish (and are acknowledged) before the connections close.
    await Promise.all(this.inFlight.values());
    this.reader?.disconnect();
    if (!opts.keepSubscription && this.cmd.status === 'ready') {
      await this.cmd.xgroup('DESTROY', this.stream, this.opts.group).catch(() => {});
      await this.cmd.hdel(this.heartbeats, this.opts.group).catch(() => {});
    }
    await this.cmd.quit().catch(() => this.cmd.disconnect());
  }

  async removeOrphans(): Promise<string[]> {
    await this.connect();
    const staleBefore = Date.now() - (this.opts.staleAfterMs ?? DEFAULTS.staleAfterMs);
    const beats = await this.cmd.hgetall(this.heartbeats);
    const groups = ((await this.cmd.xinfo('GROUPS', this.stream).catch(() => [])) as unknown[][]).map((g) =>
      String(g[1]),
    );
    const removed: string[] = [];
    for (const group of new Set([...groups, ...Object.keys(beats)])) {
      if (group === this.opts.group) continue;
      const beat = Number(beats[group] ?? 0);
      if (beat >= staleBefore) continue;
      await this.cmd.xgroup('DESTROY', this.stream, group).catch(() => {});
      await this.cmd.hdel(this.heartbeats, group);
      removed.push(group);
    }
    if (removed.length) this.log.info({ removed }, 'removed orphaned consumer groups');
    return removed;
  }

  /** Whether a group exists (for tests and the CLI). */
  async hasGroup(group = this.opts.group): Promise<boolean> {
    await this.connect();
    const groups = (await this.cmd.xinfo('GROUPS', this.stream).catch(() => [])) as unknown[][];
    return groups.some((g) => String(g[1]) === group);
  }

  /** The dead stream's entries: reason and body. */
  async deadLetters(): Promise<{ reason: string; body: string }[]> {
    await this.connect();
    const entries = (await this.cmd.xrange(this.dead, '-', '+')) as [string, string[]][];
    return entries.map(([, f]) => ({ reason: field(f, 'reason') ?? '', body: field(f, 'body') ?? '' }));
  }

  private async run(reader: Redis, handler: EventHandler, opts: ConsumeOptions): Promise<void> {
    const retryMs = this.opts.retryMs ?? 2000;
    const sweepMs = this.opts.pendingSweepMs ?? 30_000;
    let nextRetry = Date.now() + retryMs;
    // At once: a previous consumer of this group (the same task's listener, killed -9) may have
    // left entries pending that no one would deliver again.
    let nextSweep = 0;
    while (!this.stopping) {
      try {
        const now = Date.now();
        if ((this.attempts.size > 0 && now >= nextRetry) || now >= nextSweep) {
          // Our own pending entries: the ones whose handler (or acknowledgement) failed, and any
          // we never saw (a reply lost with the connection, or a consumer before this one).
          await this.handle(await this.read(reader, '0', undefined), handler);
          nextRetry = Date.now() + retryMs;
          nextSweep = Date.now() + sweepMs;
        }
        const block =
          this.attempts.size > 0 ? Math.min(this.opts.blockMs ?? 1000, retryMs) : this.opts.blockMs;
        await this.handle(await this.read(reader, '>', block ?? 1000), handler);
        this.stats.lastReceiveOkMs = Date.now();
        this.stats.lastError = undefined;
      } catch (err) {
        if (this.stopping) break;
        const message = String((err as Error).message);
        this.stats.lastError = message;
        if (message.includes('NOGROUP')) {
          try {
            await this.resubscribe(opts, message);
            continue;
          } catch (again) {
            this.log.error({ err: again }, 'recreating the consumer group failed; retrying');
          }
        } else {
          this.log.error({ err }, 'bus read failed; retrying');
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  private async read(reader: Redis, from: string, blockMs: number | undefined): Promise<Entry[]> {
    const args: (string | number)[] = ['GROUP', this.opts.group, 'task', 'COUNT', 100];
    if (blockMs !== undefined) args.push('BLOCK', blockMs);
    args.push('STREAMS', this.stream, from);
    const res = (await reader.call('XREADGROUP', ...args)) as [string, Entry[]][] | null;
    if (!res) return [];
    const entries = res[0]?.[1] ?? [];
    if (from === '0' && entries.length === 0) this.attempts.clear();
    const newest = entries.at(-1)?.[0];
    if (from === '>' && newest) this.lastId = newest;
    return entries;
  }

  /**
   * Hands entries to the handler in stream order without waiting for one to finish before the
   * next starts (up to maxInFlight at once): the owner orders what must be ordered (one entity's
   * events), and one slow event never holds back the rest.
   */
  private async handle(entries: Entry[], handler: EventHandler): Promise<void> {
    const max = this.opts.maxInFlight ?? 64;
    for (const [id, fields] of entries) {
      // The retry pass reads every pending entry, including the ones still being handled.
      if (this.inFlight.has(id)) continue;
      while (this.inFlight.size >= max) await Promise.race(this.inFlight.values());
      const p = this.deliver(id, fields, handler)
        .catch((err) => {
          // The handler may have run, but the entry was not acknowledged (XACK or the dead letter
          // failed): it stays pending, so it is delivered again with the retries (idempotent).
          this.log.error({ err, id }, 'bus delivery failed; the entry stays pending and is retried');
          if (!this.attempts.has(id)) this.attempts.set(id, 0);
        })
        .finally(() => this.inFlight.delete(id));
      this.inFlight.set(id, p);
    }
  }

  private async deliver(id: string, fields: string[] | null, handler: EventHandler): Promise<void> {
    if (!fields) {
      // Trimmed from the stream while pending: nothing left to deliver.
      await this.cmd.xack(this.stream, this.opts.group, id);
      this.attempts.delete(id);
      return;
    }
    const attempt = (this.attempts.get(id) ?? 0) + 1;
    const body = field(fields, 'body');
    const outcome =
      body === undefined
        ? await this.deadLetter(JSON.stringify(fields), 'entry has no body field').then(() => 'ack' as const)
        : await dispatch({
            body,
            attempt,
            maxAttempts: this.maxAttempts,
            handler,
            deadLetter: (b, reason) => this.deadLetter(b, reason),
            logger: this.log,
            stats: this.stats,
          });
    if (outcome === 'ack') {
      await this.cmd.xack(this.stream, this.opts.group, id);
      this.attempts.delete(id);
    } else {
      this.attempts.set(id, attempt);
    }
  }

  private async deadLetter(body: string, reason: string): Promise<void> {
    await this.cmd.xadd(
      this.dead,
      'MAXLEN',
      '~',
      10_000,
      '*',
      'reason',
      reason,
      'group',
      this.opts.group,
      'body',
      body,
    );
  }

  private async beat(): Promise<void> {
    await this.cmd.hset(this.heartbeats, this.opts.group, String(Date.now()));
  }

  private async connect(): Promise<void> {
    if (this.cmd.status === 'wait') await this.cmd.connect();
  }
}

function field(fields: string[], name: string): string | undefined {
  for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}

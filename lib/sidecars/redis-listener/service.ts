import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Announcer } from '../../core/bus/announcer.ts';
import type { EventPublisher } from '../../core/bus/port.ts';
import { type DomainStatus, isVerified, statusOf } from '../../core/domain-status.ts';
import { makeEvent } from '../../core/events/codec.ts';
import { certRecordSchema } from '../../core/redis-format.ts';
import type { Store } from '../../core/store/store.ts';
import type { Replica } from '../listener-runtime/replica.ts';

export class KeyspaceNotificationsOffError extends Error {
  override name = 'KeyspaceNotificationsOffError';
}

export interface RedisListenerDeps {
  /** Commands on the task's Redis. */
  readonly redis: Redis;
  /** A second connection to the same Redis, put in subscriber mode. */
  readonly subscriber: Redis;
  readonly replica: Replica;
  readonly store: Store;
  readonly publisher: EventPublisher;
  readonly log: Logger;
  readonly concurrency?: number;
}

export type Outcome = 'published' | 'replicated' | 'older' | 'invalid' | 'gone';

/** The statuses a landed certificate turns into `active` (not pending_verification, not moved_away). */
const BECOMES_ACTIVE: ReadonlySet<DomainStatus> = new Set(['verified', 'issuing', 'failed', 'expiring']);

/**
 * Watches `<prefix>:*:latest` through keyspace notifications. A certificate whose expiry is newer
 * than the version the replica already knows was written here (by the issuer or lua-resty-auto-ssl):
 * it is persisted (private key encrypted) and announced with cert.issued. Writes made by the
 * sqs-listener record their version in the same script that writes the key, so they are
 * recognised as replicated and never echo back.
 */
export class RedisListener {
  private readonly pending = new Set<string>();
  private readonly running = new Set<string>();
  private readonly retrying = new Set<string>();
  private idleWaiters: (() => void)[] = [];
  private stopped = false;
  private announcer: Announcer | undefined;
  readonly counts: Record<Outcome, number> = { published: 0, replicated: 0, older: 0, invalid: 0, gone: 0 };

  constructor(private readonly deps: RedisListenerDeps) {}

  get pattern(): string {
    return `__keyspace@0__:${this.deps.replica.keys.prefix}:*:latest`;
  }

  async start(): Promise<void> {
    const { redis, subscriber, log } = this.deps;
    const [, flags = ''] = (await redis.config('GET', 'notify-keyspace-events')) as string[];
    if (!flags.includes('K') || !(flags.includes('$') || flags.includes('A'))) {
      throw new KeyspaceNotificationsOffError(
        `Redis must publish keyspace notifications for strings (notify-keyspace-events has "${flags}", needs K and $)`,
      );
    }
    subscriber.on('pmessage', (_pattern: string, channel: string, op: string) => {
      if (op !== 'set') return;
      const domain = this.deps.replica.keys.domainOfCertKey(channel.slice('__keyspace@0__:'.length));
      if (domain) this.enqueue(domain);
    });
    await subscriber.psubscribe(this.pattern);
    log.info({ pattern: this.pattern }, 'watching certificates');
    // Keyspace notifications are fire-and-forget: any sent while the subscriber was reconnecting
    // are lost. After a reconnect, subscribe again and look at every certificate once more.
    subscriber.on('ready', () => {
      if (this.stopped) return;
      log.warn({ pattern: this.pattern }, 'subscriber reconnected; resubscribing and catching up');
      subscriber
        .psubscribe(this.pattern)
        .then(() => this.catchUp())
        .catch((err) => log.error({ err }, 'catch-up after reconnect failed'));
    });
    await this.catchUp();
  }

  /**
   * Stops taking notifications, finishes the certificates being processed, then makes one last
   * pass over every certificate key: one written just before the stop (its notification still in
   * flight, or its processing failed and waits for a retry) is persisted before the task goes.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.deps.subscriber.punsubscribe().catch(() => {});
    const leftover = new Set([...this.pending, ...this.retrying]);
    this.pending.clear();
    await this.idle();
    for (const key of await this.certKeys().catch(() => [])) {
      const domain = this.deps.replica.keys.domainOfCertKey(key);
      if (domain) leftover.add(domain);
    }
    for (const domain of leftover) {
      try {
        this.counts[await this.process(domain)] += 1;
      } catch (err) {
        this.deps.log.error({ err, domain }, 'certificate not replicated before stop');
      }
    }
  }

  /** Resolves when nothing is queued or running. */
  idle(): Promise<void> {
    if (this.pending.size === 0 && this.running.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Certificates written while this listener was down are checked once at start. */
  private async catchUp(): Promise<void> {
    for (const key of await this.certKeys()) {
      const domain = this.deps.replica.keys.domainOfCertKey(key);
      if (domain) this.enqueue(domain);
    }
  }

  private async certKeys(): Promise<string[]> {
    const match = `${this.deps.replica.keys.prefix}:*:latest`;
    const out: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await this.deps.redis.scan(cursor, 'MATCH', match, 'COUNT', 1000);
      cursor = next;
      out.push(...keys);
    } while (cursor !== '0');
    return out;
  }

  private enqueue(domain: string): void {
    if (this.stopped) return;
    this.pending.add(domain);
    this.pump();
  }

  private pump(): void {
    const limit = this.deps.concurrency ?? 4;
    for (const domain of this.pending) {
      if (this.running.size >= limit) return;
      // One at a time per domain; a notification during processing re-queues it.
      if (this.running.has(domain)) continue;
      this.pending.delete(domain);
      this.running.add(domain);
      this.process(domain)
        .then((outcome) => {
          this.counts[outcome] += 1;
        })
        .catch((err) => {
          this.deps.log.error({ err, domain }, 'failed to replicate a certificate; retrying');
          this.retrying.add(domain);
          setTimeout(() => {
            this.retrying.delete(domain);
            this.enqueue(domain);
          }, 1000).unref();
        })
        .finally(() => {
          this.running.delete(domain);
          if (this.pending.size === 0 && this.running.size === 0) {
            for (const w of this.idleWaiters.splice(0)) w();
          } else {
            this.pump();
          }
        });
    }
  }

  async process(domain: string): Promise<Outcome> {
    const { redis, replica, store, publisher, log } = this.deps;
    const raw = await redis.get(replica.keys.cert(domain));
    if (raw === null) return 'gone';
    let doc: unknown;
    try {
      doc = JSON.parse(raw);
    } catch {
      doc = undefined;
    }
    const parsed = certRecordSchema.safeParse(doc);
    if (!parsed.success) {
      log.warn(
        { domain, issues: parsed.error.issues.map((i) => i.message) },
        'not a certificate record; ignored',
      );
      return 'invalid';
    }
    const record = parsed.data;
    const entity = `cert:${domain}`;
    const known = await replica.known(entity);
    if (known && record.expiry <= known.version) return 'replicated';

    const written = await store.putCert(domain, record);
    if (written === 'stale') {
      const stored = await store.getCert(domain);
      // Same version already stored but never noted here: a crash between persist and announce.
      if (!stored || stored.version !== record.expiry || stored.state !== 'live') {
        log.info({ domain, expiry: record.expiry, stored: stored?.version }, 'store has a newer certificate');
        return 'older';
      }
    }
    await publisher.publish(makeEvent('cert.issued', record.expiry, { domain }));
    await this.markActive(domain);
    await replica.note(entity, record.expiry);
    log.info({ domain, expiry: record.expiry }, 'certificate persisted and announced');
    return 'published';
  }

  /**
   * The domain is `active` as soon as its certificate lands, in the table and as a domain.status
   * event (table first), without waiting for someone to read it. Only here, where the certificate
   * was written, so one task in one region makes the change.
   */
  private async markActive(domain: string): Promise<void> {
    const item = await this.deps.store.getDomain(domain);
    if (!item || item.deleted || !item.tenant || item.status === undefined || !isVerified(item)) return;
    const previous = statusOf(item);
    if (!BECOMES_ACTIVE.has(previous)) return;
    this.announcer ??= new Announcer(this.deps.store, this.deps.publisher);
    const version = await this.announcer.changeDomainStatus(domain, item.tenant, {
      status: 'active',
      previous,
    });
    this.deps.log.info(
      { domain, previous, version },
      version === undefined ? 'domain changed meanwhile' : 'domain active',
    );
  }
}

import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { RedisCertStore } from './cert-store.ts';
import type { Issuer } from './issuer.ts';

/**
 * Delegated DNS-01 needs no handshake: when a domain enters this task's registry (the sqs-listener
 * writes `<prefix>:@domain:<domain>` once its owner proved control) and its `_acme-challenge`
 * CNAME points into the challenge zone, ask for its certificate at once, so it exists before the
 * domain points at the edge. Every task sees the same write; the lease leaves one order.
 */
export class DelegatedTrigger {
  private sub: Redis | undefined;

  constructor(private readonly deps: { redis: Redis; certs: RedisCertStore; issuer: Issuer; log: Logger }) {}

  async start(): Promise<void> {
    const { redis, certs } = this.deps;
    const prefix = `__keyspace@0__:${certs.keys.domain('')}`;
    this.sub = redis.duplicate();
    this.sub.on('error', (err) => this.deps.log.warn({ err: err.message }, 'delegation watch: redis error'));
    this.sub.on('pmessage', (_pattern: string, channel: string, event: string) => {
      if (event === 'set') void this.check(channel.slice(prefix.length));
    });
    await this.sub.psubscribe(`${prefix}*`);
  }

  /** Orders for a registered domain without a certificate whose challenge is delegated. */
  async check(domain: string): Promise<void> {
    const { certs, issuer, log } = this.deps;
    try {
      if (!domain || (await certs.get(domain))) return;
      // A tenant wildcard entry (`*.<domain>`) is delegated through its domain's CNAME.
      if (!(await issuer.delegatedTo(domain.startsWith('*.') ? domain.slice(2) : domain))) return;
      const outcome = await issuer.request(domain);
      log.info({ domain, outcome }, 'delegated DNS-01: certificate requested before any handshake');
    } catch (err) {
      log.warn({ domain, err }, 'delegated DNS-01 request failed');
    }
  }

  stop(): void {
    this.sub?.disconnect();
  }
}

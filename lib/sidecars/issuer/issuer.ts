import type { Logger } from 'pino';
import { delegatedName, delegationTarget } from '../../core/delegation.ts';
import { registeredDomain } from '../../core/domain-names.ts';
import type { CertRecord } from '../../core/redis-format.ts';
import type { IssuanceStore } from '../../core/store/issuance.ts';
import type { LeaseStore } from '../../core/store/lease.ts';
import type { AcmeCa, KeyType } from './acme.ts';
import { backoffDelayMs } from './backoff.ts';
import { type Budget, letsEncryptLimits } from './budget.ts';
import type { RedisCertStore } from './cert-store.ts';
import type { IssuerConfig } from './config.ts';
import { BudgetExceededError, CaUnavailableError, RateLimitedError, ValidationError } from './errors.ts';
import { SingleFlight } from './single-flight.ts';

export type Outcome =
  /** A certificate is there (possibly written by another issuer meanwhile). */
  | { readonly status: 'present' }
  | { readonly status: 'issued'; readonly ca: string }
  /** Another issuer holds the lease: its certificate arrives by replication. */
  | { readonly status: 'waiting' }
  /** No order: not allowed, covered by the wildcard, or backing off. */
  | { readonly status: 'refused'; readonly reason: string }
  | { readonly status: 'failed'; readonly reason: string; readonly nextAttemptAt: number };

export interface RequestOptions {
  /** A renewal orders even though a certificate exists, unless its expiry moved meanwhile. */
  readonly renewal?: { readonly currentExpiry: number; readonly replaces?: string };
}

export interface IssuerDeps {
  readonly config: IssuerConfig;
  readonly cas: readonly AcmeCa[];
  readonly certs: RedisCertStore;
  readonly leases: LeaseStore;
  readonly issuance: IssuanceStore;
  readonly budget: Budget;
  readonly log: Logger;
  /** Delegated DNS-01: the platform's challenge zone and how `_acme-challenge` CNAMEs are read. */
  readonly delegation?: Delegation;
}

export interface Delegation {
  readonly zone: string;
  /** The CNAME target(s) of a name, one hop ([] or a rejection when there is none). */
  resolveCname(name: string): Promise<string[]>;
}

export interface IssuerStats {
  issued: number;
  failed: number;
  refused: number;
  waiting: number;
}

/**
 * Gets a domain its certificate: one flight per domain in this process, one lease per domain in
 * the fleet, the registry and the backoff checked before anything is ordered, the budget and
 * 429s respected, CAs tried in order.
 */
export class Issuer {
  private readonly flights = new SingleFlight<Outcome>();
  private readonly pausedCas = new Map<string, number>();
  /** Orders queued per delegated challenge name (holdingChallengeName). */
  private readonly challengeNames = new Map<string, Promise<void>>();
  private readonly limits;
  readonly wildcardName: string;
  readonly stats: IssuerStats = { issued: 0, failed: 0, refused: 0, waiting: 0 };

  constructor(private readonly deps: IssuerDeps) {
    this.limits = letsEncryptLimits(deps.config.budget);
    this.wildcardName = `*.${deps.config.platformDomain}`;
  }

  /** Orders placed with every CA since start. */
  get orders(): number {
    return this.deps.cas.reduce((n, ca) => n + ca.orders, 0);
  }

  get inFlight(): number {
    return this.flights.size;
  }

  drain(): Promise<void> {
    return this.flights.drain();
  }

  /** Names under the platform domain are served by the wildcard and never ordered one by one. */
  coveredByWildcard(domain: string): boolean {
    const platform = this.deps.config.platformDomain;
    return domain === platform || domain.endsWith(`.${platform}`);
  }

  request(domain: string, opts: RequestOptions = {}): Promise<Outcome> {
    return this.flights.run(domain, async () => {
      const outcome = await this.attempt(domain, opts).catch((err: Error): Outcome => {
        this.deps.log.error({ domain, err }, 'issuance attempt crashed');
        return { status: 'failed', reason: err.message, nextAttemptAt: Date.now() };
      });
      if (outcome.status !== 'present' && outcome.status !== 'issued') {
        this.stats[outcome.status]++;
      }
      return outcome;
    });
  }

  private async attempt(domain: string, opts: RequestOptions): Promise<Outcome> {
    const { certs, leases, issuance, log } = this.deps;
    const wildcard = domain === this.wildcardName;
    // `*.<domain>` of a tenant: allowed with its domain, and only through delegated DNS-01.
    const base = !wildcard && domain.startsWith('*.') ? domain.slice(2) : domain;
    if (!wildcard) {
      if (this.coveredByWildcard(base))
        return { status: 'refused', reason: 'covered by the platform wildcard' };
      // `*.<domain>` with its domain, or as an entry of its own (a tenant wildcard).
      const allowed = (await certs.allowed(base)) || (base !== domain && (await certs.allowed(domain)));
      if (!allowed) return { status: 'refused', reason: 'domain not in the registry' };
    }
    if (!this.needed(await certs.get(domain), opts)) return { status: 'present' };

    const previous = await issuance.get(domain);
    if (previous?.nextAttemptAt && previous.nextAttemptAt > Date.now()) {
      return {
        status: 'refused',
        reason: `backing off until ${new Date(previous.nextAttemptAt).toISOString()}: ${previous.reason ?? ''}`,
      };
    }

    const delegated = wildcard ? undefined : await this.delegatedTo(base);
    if (base !== domain && !delegated) {
      return {
        status: 'refused',
        reason: `a wildcard needs the CNAME ${delegatedName(base)} (delegated DNS-01)`,
      };
    }

    if (!(await leases.acquire(domain))) {
      log.info({ domain }, 'lease held by another issuer; waiting for its certificate');
      return { status: 'waiting' };
    }
    const keepAlive = setInterval(
      () => {
        leases.extend(domain).then(
          (held) => held || log.warn({ domain }, 'issuance lease lost'),
          (err) => log.warn({ domain, err }, 'issuance lease extension failed'),
        );
      },
      (this.deps.config.lease.ttlSeconds * 1000) / 3,
    );
    keepAlive.unref();
    try {
      // The previous holder may have finished between our first look and the lease.
      if (!this.needed(await certs.get(domain), opts)) return { status: 'present' };
      const order = () => this.order(domain, base, wildcard, delegated, opts, previous?.failures ?? 0);
      return delegated ? await this.holdingChallengeName(delegated, domain, order) : await order();
    } finally {
      clearInterval(keepAlive);
      await leases.release(domain).catch((err) => log.warn({ domain, err }, 'lease release failed'));
    }
  }

  /**
   * `x` and `*.x` answer DNS-01 at the same delegated name: two orders at once would overwrite
   * and clear each other's TXT values. One order per delegated name at a time: queued in this
   * issuer, and across issuers by a lease on the name itself (waited for up to the lease's
   * lifetime; its holder then finished or died).
   */
  private async holdingChallengeName(
    name: string,
    domain: string,
    order: () => Promise<Outcome>,
  ): Promise<Outcome> {
    const { leases, log, config } = this.deps;
    const before = this.challengeNames.get(name) ?? Promise.resolve();
    let done!: () => void;
    const mine = new Promise<void>((resolve) => {
      done = resolve;
    });
    const queued = before.then(() => mine);
    this.challengeNames.set(name, queued);
    try {
      await before;
      const deadline = Date.now() + config.lease.ttlSeconds * 1000;
      while (!(await leases.acquire(name))) {
        if (Date.now() > deadline) return { status: 'waiting' };
        log.info({ domain, challenge: name }, 'delegated challenge name in use by another issuer; waiting');
        await new Promise((r) => setTimeout(r, 1000));
      }
      const keepAlive = setInterval(
        () =>
          leases.extend(name).catch((err) => log.warn({ challenge: name, err }, 'lease extension failed')),
        (config.lease.ttlSeconds * 1000) / 3,
      );
      keepAlive.unref();
      try {
        return await order();
      } finally {
        clearInterval(keepAlive);
        await leases.release(name).catch((err) => log.warn({ challenge: name, err }, 'lease release failed'));
      }
    } finally {
      done();
      if (this.challengeNames.get(name) === queued) this.challengeNames.delete(name);
    }
  }

  private needed(existing: CertRecord | undefined, opts: RequestOptions): boolean {
    if (!existing) return true;
    return opts.renewal !== undefined && existing.expiry === opts.renewal.currentExpiry;
  }

  /**
   * The challenge zone's name for this domain when its `_acme-challenge` CNAME points there (the
   * tenant delegated DNS-01 to the platform), else undefined (HTTP-01).
   */
  async delegatedTo(domain: string): Promise<string | undefined> {
    const delegation = this.deps.delegation;
    if (!delegation) return undefined;
    const target = delegationTarget(domain, delegation.zone);
    const cnames = await delegation.resolveCname(delegatedName(domain)).catch(() => [] as string[]);
    return cnames.some((c) => c.toLowerCase().replace(/\.$/, '') === target) ? target : undefined;
  }

  private async order(
    domain: string,
    base: string,
    wildcard: boolean,
    delegated: string | undefined,
    opts: RequestOptions,
    failures: number,
  ): Promise<Outcome> {
    const { certs, issuance, log, config } = this.deps;
    const names = wildcard ? [domain, config.platformDomain] : base !== domain ? [domain, base] : [domain];
    await issuance.pending(domain);
    let retryAt = 0;
    const reasons: string[] = [];
    let validationFailed = false;

    for (const ca of this.deps.cas) {
      const paused = Math.max(
        this.pausedCas.get(ca.name) ?? 0,
        await this.deps.budget.caPausedUntil(ca.name),
      );
      if (paused > Date.now()) {
        reasons.push(`${ca.name}: rate limited until ${new Date(paused).toISOString()}`);
        retryAt = retryAt ? Math.min(retryAt, paused) : paused;
        continue;
      }
      try {
        if (ca.config.budget) await this.reserve(ca.name, names);
        log.info(
          {
            domain,
            ca: ca.name,
            renewal: opts.renewal !== undefined,
            challenge: delegated ? 'dns-01' : undefined,
          },
          'ordering certificate',
        );
        const started = Date.now();
        const record = await ca.issue({
          names,
          keyType: config.acme.keyType as KeyType,
          dns01: wildcard || delegated !== undefined,
          ...(delegated ? { dnsRecordName: delegated } : {}),
          replaces: opts.renewal?.replaces,
        });
        await certs.put(domain, record);
        await issuance.issued(domain, record.expiry, ca.name);
        this.stats.issued++;
        log.info(
          { domain, ca: ca.name, expiry: record.expiry, ms: Date.now() - started },
          'certificate issued',
        );
        return { status: 'issued', ca: ca.name };
      } catch (err) {
        const e = err as Error;
        reasons.push(`${ca.name}: ${e.message}`);
        if (err instanceof RateLimitedError) {
          this.pausedCas.set(ca.name, err.retryAt);
          await this.deps.budget.pauseCa(ca.name, err.retryAt);
          retryAt = retryAt ? Math.min(retryAt, err.retryAt) : err.retryAt;
          log.warn({ domain, ca: ca.name, retryAt: err.retryAt }, 'CA rate limited; trying the next one');
          continue;
        }
        if (err instanceof BudgetExceededError) {
          retryAt = retryAt ? Math.min(retryAt, err.retryAt) : err.retryAt;
          log.warn({ domain, ca: ca.name, limit: err.limit }, 'issuance budget exhausted for this CA');
          continue;
        }
        if (err instanceof ValidationError) {
          // The domain, not the CA, is at fault: another CA would fail the same way.
          validationFailed = true;
          if (ca.config.budget) {
            await this.deps.budget
              .record(this.limits.failedAuthz, `${ca.name}:${err.identifier}`)
              .catch(() => {});
          }
          log.warn({ domain, ca: ca.name, err: e.message }, 'validation failed');
          break;
        }
        log.warn(
          { domain, ca: ca.name, err: e.message, unavailable: err instanceof CaUnavailableError },
          'order failed',
        );
      }
    }

    const count = failures + 1;
    const nextAttemptAt = Math.max(Date.now() + backoffDelayMs(config.backoff, count), retryAt);
    const reason = reasons.join('; ') || 'no CA configured';
    await issuance.failed(domain, reason, nextAttemptAt, count);
    this.stats.failed++;
    log.warn({ domain, failures: count, nextAttemptAt, validationFailed }, 'issuance failed; backing off');
    return { status: 'failed', reason, nextAttemptAt };
  }

  /** Takes room in every Let's Encrypt window this order counts against, or none of them. */
  private async reserve(ca: string, names: readonly string[]): Promise<void> {
    const { budget } = this.deps;
    for (const name of names) await budget.check(this.limits.failedAuthz, `${ca}:${name}`);
    const taken: [typeof this.limits.orders, string][] = [];
    try {
      for (const [limit, subject] of [
        [this.limits.orders, ca],
        [this.limits.certsPerDomain, `${ca}:${registeredDomain(names[0] ?? '')}`],
        [this.limits.duplicates, `${ca}:${[...names].sort().join(',')}`],
      ] as const) {
        await budget.reserve(limit, subject);
        taken.push([limit, subject]);
      }
    } catch (err) {
      await Promise.all(taken.map(([limit, subject]) => budget.unreserve(limit, subject)));
      throw err;
    }
  }
}

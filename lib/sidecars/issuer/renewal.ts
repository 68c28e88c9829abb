import type { Logger } from 'pino';
import type { CertRecord } from '../../core/redis-format.ts';
import { type AriClient, ariCertId, pickRenewalTime } from './ari.ts';
import type { RedisCertStore } from './cert-store.ts';
import type { Issuer, Outcome } from './issuer.ts';

export interface RenewalOptions {
  readonly beforeExpiryDays: number;
  readonly jitterSeconds: number;
  readonly intervalSeconds: number;
  /** The first CA's directory, asked for ARI; undefined turns ARI off. */
  readonly ariDirectoryUrl?: string;
  /**
   * A certificate this close to expiry with no renewal in progress is reported (metric and a
   * `cert_expiring` log line an alarm counts); default half of beforeExpiryDays, at most 14 days:
   * well after renewal should have won.
   */
  readonly alertBeforeDays?: number;
  /** The window the renewal failure rate is computed over (seconds); default 6 hours. */
  readonly failureRateWindowSeconds?: number;
}

/** What the last renewal pass saw: the issuer's /metrics and the alarms read it. */
export interface ExpiryReport {
  /** Certificates in this task's Redis. */
  certificates: number;
  /** Within alertBeforeDays of expiry, not renewed and no renewal running elsewhere. */
  expiring: number;
  /** Past expiry and still in Redis (served). */
  expired: number;
  /** Renewal attempts that failed, since start. */
  renewalFailures: number;
  /** Renewals that produced a certificate, since start. */
  renewed: number;
  /** Renewal orders tried (issued or failed), since start. */
  renewalAttempts: number;
  /**
   * Failed / tried renewals over the last failureRateWindowSeconds (0 with no attempt), with the
   * counts it comes from.
   */
  failureRate: { ratio: number; attempts: number; failures: number; readonly windowSeconds: number };
  /** When the last pass ended (Unix ms); 0 before the first. */
  lastPassAt: number;
  readonly alertBeforeDays: number;
}

interface Plan {
  readonly expiry: number;
  /** Unix ms. */
  readonly renewAt: number;
  /** Unix ms: when to ask ARI again (undefined without ARI). */
  readonly recheckAt?: number;
  readonly replaces?: string;
}

/**
 * Finds certificates in their renewal window and renews them through the issuer (same lease,
 * same budget). The window comes from the CA's ARI `renewalInfo` when it offers one, else it
 * opens `beforeExpiryDays` before expiry, minus a random jitter. The old certificate stays in
 * Redis, and keeps being served, until the new one replaces it. Domains no longer in the
 * registry are not renewed.
 */
export class RenewalScheduler {
  private readonly plans = new Map<string, Plan>();
  /** Renewal orders tried within the failure-rate window: when, and whether they failed. */
  private attempts: { at: number; failed: boolean }[] = [];
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  readonly expiry: ExpiryReport;

  constructor(
    private readonly deps: {
      readonly issuer: Pick<Issuer, 'request' | 'wildcardName'>;
      readonly certs: Pick<RedisCertStore, 'get' | 'allowed' | 'domains'>;
      readonly ari?: AriClient;
      readonly log: Logger;
      readonly random?: () => number;
      /** Told the certificate names after each pass: checks the issuance budget's headroom. */
      readonly headroom?: { check(domains: readonly string[], now?: number): Promise<unknown> };
    },
    private readonly opts: RenewalOptions,
  ) {
    this.expiry = {
      certificates: 0,
      expiring: 0,
      expired: 0,
      renewalFailures: 0,
      renewed: 0,
      renewalAttempts: 0,
      failureRate: {
        ratio: 0,
        attempts: 0,
        failures: 0,
        windowSeconds: opts.failureRateWindowSeconds ?? 21_600,
      },
      lastPassAt: 0,
      alertBeforeDays:
        opts.alertBeforeDays ?? Math.max(1, Math.min(14, Math.floor(opts.beforeExpiryDays / 2))),
    };
  }

  start(): void {
    this.timer = setInterval(() => {
      this.running ??= this.runOnce()
        .then(() => undefined)
        .catch((err) => this.deps.log.error({ err }, 'renewal pass failed'))
        .finally(() => {
          this.running = undefined;
        });
    }, this.opts.intervalSeconds * 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** When a certificate should be renewed (Unix ms), and the ARI id it replaces. */
  async plan(domain: string, cert: CertRecord, now = Date.now()): Promise<Plan> {
    const known = this.plans.get(domain);
    if (known && known.expiry === cert.expiry && (known.recheckAt === undefined || known.recheckAt > now)) {
      return known;
    }
    const random = this.deps.random ?? Math.random;
    let plan: Plan | undefined;
    if (this.deps.ari && this.opts.ariDirectoryUrl) {
      try {
        const window = await this.deps.ari.renewalWindow(this.opts.ariDirectoryUrl, cert.cert_pem, now);
        if (window) {
          plan = {
            expiry: cert.expiry,
            renewAt: pickRenewalTime(window, random),
            recheckAt: window.nextCheckAt,
            replaces: ariCertId(cert.cert_pem),
          };
        }
      } catch (err) {
        this.deps.log.warn(
          { domain, err: (err as Error).message },
          'ARI lookup failed; using the fixed window',
        );
      }
    }
    plan ??= {
      expiry: cert.expiry,
      renewAt:
        cert.expiry * 1000 -
        this.opts.beforeExpiryDays * 86_400_000 -
        Math.floor(random() * this.opts.jitterSeconds * 1000),
      // Ask ARI again soon when it failed; the fixed window needs no recheck.
      recheckAt: this.deps.ari && this.opts.ariDirectoryUrl ? now + 3600_000 : undefined,
    };
    this.plans.set(domain, plan);
    return plan;
  }

  /**
   * One pass over every certificate in Redis; returns what was attempted. Also reports expiry:
   * certificates close to it with no renewal in progress, expired ones still served, and failed
   * renewals, each as a structured log line (`cert_expiring`, `cert_expired`, `renewal_failed`).
   */
  async runOnce(now = Date.now()): Promise<Map<string, Outcome>> {
    const results = new Map<string, Outcome>();
    const alertAt = now + this.expiry.alertBeforeDays * 86_400_000;
    let certificates = 0;
    let expiring = 0;
    let expired = 0;
    const domains = await this.deps.certs.domains();
    for (const domain of domains) {
      const cert = await this.deps.certs.get(domain);
      if (!cert) continue;
      certificates += 1;
      const outcome = await this.renewIfDue(domain, cert, now);
      if (outcome) results.set(domain, outcome);
      // Replaced by a new one, or another issuer holds the lease and renews it.
      if (outcome?.status === 'issued' || outcome?.status === 'waiting') continue;
      const expiresAt = cert.expiry * 1000;
      const daysLeft = Math.floor((expiresAt - now) / 86_400_000);
      if (expiresAt <= now) {
        expired += 1;
        this.deps.log.error(
          { event: 'cert_expired', domain, expiry: cert.expiry },
          'expired certificate still served',
        );
      } else if (expiresAt <= alertAt) {
        expiring += 1;
        this.deps.log.warn(
          { event: 'cert_expiring', domain, daysLeft, expiry: cert.expiry, outcome: outcome?.status },
          'certificate close to expiry and not renewed',
        );
      }
    }
    Object.assign(this.expiry, { certificates, expiring, expired, lastPassAt: Date.now() });
    this.updateFailureRate(Date.now());
    if (this.deps.headroom) {
      await this.deps.headroom
        .check(domains, now)
        .catch((err: Error) => this.deps.log.warn({ err: err.message }, 'budget headroom check failed'));
    }
    return results;
  }

  private async renewIfDue(domain: string, cert: CertRecord, now: number): Promise<Outcome | undefined> {
    const plan = await this.plan(domain, cert, now);
    if (plan.renewAt > now) return undefined;
    // A tenant's `*.<domain>` lives as long as its domain does.
    const base = domain.replace(/^\*\./, '');
    if (domain !== this.deps.issuer.wildcardName && !(await this.deps.certs.allowed(base))) {
      this.deps.log.info({ domain }, 'not renewing: domain no longer in the registry');
      return undefined;
    }
    const outcome = await this.deps.issuer.request(domain, {
      renewal: { currentExpiry: cert.expiry, replaces: plan.replaces },
    });
    if (outcome.status === 'issued') this.expiry.renewed += 1;
    if (outcome.status === 'issued' || outcome.status === 'failed') {
      // An order was tried: the denominator of the failure rate (the alarm's metric math).
      this.expiry.renewalAttempts += 1;
      this.attempts.push({ at: Date.now(), failed: outcome.status === 'failed' });
      this.deps.log.info(
        { event: 'renewal_attempt', domain, outcome: outcome.status },
        'renewal order tried',
      );
    }
    if (outcome.status === 'failed') {
      this.expiry.renewalFailures += 1;
      this.deps.log.warn(
        { event: 'renewal_failed', domain, reason: outcome.reason, nextAttemptAt: outcome.nextAttemptAt },
        'renewal failed',
      );
    } else {
      this.deps.log.info({ domain, outcome }, 'renewal attempted');
    }
    return outcome;
  }

  private updateFailureRate(now: number): void {
    const rate = this.expiry.failureRate;
    this.attempts = this.attempts.filter((a) => a.at > now - rate.windowSeconds * 1000);
    const failures = this.attempts.filter((a) => a.failed).length;
    Object.assign(rate, {
      attempts: this.attempts.length,
      failures,
      ratio: this.attempts.length ? failures / this.attempts.length : 0,
    });
  }
}

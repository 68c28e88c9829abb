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
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(
    private readonly deps: {
      readonly issuer: Pick<Issuer, 'request' | 'wildcardName'>;
      readonly certs: Pick<RedisCertStore, 'get' | 'allowed' | 'domains'>;
      readonly ari?: AriClient;
      readonly log: Logger;
      readonly random?: () => number;
    },
    private readonly opts: RenewalOptions,
  ) {}

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

  /** One pass over every certificate in Redis; returns what was attempted. */
  async runOnce(now = Date.now()): Promise<Map<string, Outcome>> {
    const results = new Map<string, Outcome>();
    for (const domain of await this.deps.certs.domains()) {
      const cert = await this.deps.certs.get(domain);
      if (!cert) continue;
      const plan = await this.plan(domain, cert, now);
      if (plan.renewAt > now) continue;
      if (domain !== this.deps.issuer.wildcardName && !(await this.deps.certs.allowed(domain))) {
        this.deps.log.info({ domain }, 'not renewing: domain no longer in the registry');
        continue;
      }
      const outcome = await this.deps.issuer.request(domain, {
        renewal: { currentExpiry: cert.expiry, replaces: plan.replaces },
      });
      results.set(domain, outcome);
      this.deps.log.info({ domain, outcome }, 'renewal attempted');
    }
    return results;
  }
}

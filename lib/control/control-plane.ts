import { Announcer } from '../core/bus/announcer.ts';
import type { EventPublisher } from '../core/bus/port.ts';
import type { EdgeEvent } from '../core/events/schema.ts';
import type { Store } from '../core/store/store.ts';
import type { CertificateReader } from './certificates.ts';
import type { ControlContext } from './context.ts';
import { DnsCheck, type EdgeTargets } from './dns/check.ts';
import type { DnsResolver } from './dns/resolver.ts';
import { Domains } from './domains.ts';
import { PublishError } from './errors.ts';
import { fetchToken, type TokenFetcher } from './ownership.ts';
import { Purges } from './purge.ts';
import { Tenants } from './tenants.ts';

export interface ControlPlaneOptions {
  readonly store: Store;
  /** Any bus adapter, or just its publishing half. */
  readonly bus: EventPublisher;
  readonly resolver: DnsResolver;
  /** Certificate and issuance state for `domain show` (TableCertificateReader on the same table). */
  readonly certificates: CertificateReader;
  /** Where custom domains must point; without it, domains are only added with the check skipped. */
  readonly edge?: EdgeTargets;
  /** CAA identities of the CAs the issuer uses; default `letsencrypt.org`; empty skips the check. */
  readonly caaIdentities?: readonly string[];
  /** How the HTTP ownership token is fetched; default a plain GET without redirects. */
  readonly fetchToken?: TokenFetcher;
  /** A certificate this close to expiry shows as `expiring`; default 30 (the issuer's renewal window). */
  readonly renewBeforeDays?: number;
  /** Milliseconds since the epoch; default Date.now. */
  readonly now?: () => number;
  /**
   * The zone tenants delegate `_acme-challenge.<domain>` into (the issuers' EDGE_DNS01_CHALLENGE_ZONE):
   * the domain's records then include that CNAME. Unset: HTTP-01 only.
   */
  readonly challengeZone?: string;
}

/**
 * The operations a SaaS backend or an operator needs, over the table and the bus. Every write goes
 * to the table first and is then published as a versioned event (the Announcer), so a task that
 * bootstraps later sees it, and a backend may publish the documented events itself instead.
 */
export class ControlPlane {
  readonly tenants: Tenants;
  readonly domains: Domains;
  private readonly purges: Purges;

  constructor(opts: ControlPlaneOptions) {
    const publisher = new ReportingPublisher(opts.bus);
    const ctx: ControlContext = {
      store: opts.store,
      announcer: new Announcer(opts.store, publisher),
      publisher,
      certificates: opts.certificates,
      dnsCheck: opts.edge ? new DnsCheck(opts.resolver, opts.edge) : undefined,
      resolver: opts.resolver,
      edge: opts.edge,
      fetchToken: opts.fetchToken ?? fetchToken,
      caaIdentities: opts.caaIdentities ?? ['letsencrypt.org'],
      renewBeforeDays: opts.renewBeforeDays ?? 30,
      challengeZone: opts.challengeZone,
      now: opts.now ?? Date.now,
    };
    this.tenants = new Tenants(ctx);
    this.domains = new Domains(ctx, this.tenants);
    this.purges = new Purges(ctx, this.tenants);
  }

  purge: Purges['purge'] = (tenant, target) => this.purges.purge(tenant, target);
}

/** Publishing happens after the table write: say so when it fails, since repeating fixes it. */
class ReportingPublisher implements EventPublisher {
  constructor(private readonly inner: EventPublisher) {}

  async publish(event: EdgeEvent): Promise<void> {
    try {
      await this.inner.publish(event);
    } catch (err) {
      throw new PublishError(
        `${event.type} (version ${event.version}) is in the table but was not published: ${(err as Error).message}; repeat the command to publish it`,
        { cause: err },
      );
    }
  }
}

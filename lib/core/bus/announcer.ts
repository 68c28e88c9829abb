import { type DomainState, type DomainStatus, isVerified } from '../domain-status.ts';
import { makeEvent } from '../events/codec.ts';
import type { EventOf } from '../events/schema.ts';
import type { TenantHsts } from '../redis-format.ts';
import type { Origin } from '../store/items.ts';
import { purgeField } from '../store/purge-fields.ts';
import type { Store } from '../store/store.ts';
import type { EventPublisher } from './port.ts';

type PurgeRequest = DistributiveOmit<EventOf<'cache.purge'>['payload'], 'generation'>;
type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

/**
 * Changes that every task must see: written to the store first (so a task that bootstraps later
 * has them), then published. This is what the control plane calls; a backend that publishes the
 * documented events itself must write the table the same way.
 */
export class Announcer {
  private lastGeneration = 0;

  constructor(
    private readonly store: Store,
    private readonly publisher: EventPublisher,
  ) {}

  /** The whole tenant record: without `hsts` the tenant's HSTS is off. */
  async upsertTenant(id: string, origin: Origin, settings: { hsts?: TenantHsts } = {}): Promise<number> {
    const version = await this.store.nextVersion(`tenant:${id}`);
    const { hsts } = settings;
    await this.store.putTenant(id, origin, version, hsts);
    await this.publisher.publish(
      makeEvent('tenant.upserted', version, { id, origin: origin as never, ...(hsts ? { hsts } : {}) }),
    );
    return version;
  }

  async removeTenant(id: string): Promise<number> {
    const version = await this.store.nextVersion(`tenant:${id}`);
    await this.store.removeTenant(id, version);
    await this.publisher.publish(makeEvent('tenant.removed', version, { id }));
    return version;
  }

  async upsertDomain(domain: string, tenant: string): Promise<number> {
    const version = await this.store.nextVersion(`domain:${domain}`);
    await this.store.putDomain(domain, tenant, version);
    await this.publisher.publish(makeEvent('domain.upserted', version, { domain, tenant }));
    return version;
  }

  /**
   * Registers a domain with its onboarding state and publishes `domain.status`; a verified one is
   * also upserted (what the edge acts on), with the same version.
   */
  async addDomain(
    domain: string,
    tenant: string,
    state: DomainState & { readonly status: DomainStatus },
    previous?: DomainStatus,
  ): Promise<number> {
    const version = await this.store.nextVersion(`domain:${domain}`);
    await this.store.putDomain(domain, tenant, version, state);
    await this.publisher.publish(
      makeEvent('domain.status', version, {
        domain,
        tenant,
        status: state.status,
        ...(previous ? { previous } : {}),
        ...(state.reason ? { reason: state.reason } : {}),
      }),
    );
    if (isVerified(state)) {
      await this.publisher.publish(makeEvent('domain.upserted', version, { domain, tenant }));
    }
    return version;
  }

  /**
   * A status change: table first (only forward, never on a removed domain), then `domain.status`;
   * the first proof of ownership (`verifiedAt`) also upserts the domain for the edge. Returns
   * undefined when the table had moved on (a newer change or a removal won).
   */
  async changeDomainStatus(
    domain: string,
    tenant: string,
    change: { status: DomainStatus; previous: DomainStatus; reason?: string; verifiedAt?: number },
    opts: { upsert?: boolean } = {},
  ): Promise<number | undefined> {
    const version = await this.store.nextVersion(`domain:${domain}`);
    const written = await this.store.setDomainStatus(domain, version, change);
    if (written === 'stale') return undefined;
    await this.publisher.publish(
      makeEvent('domain.status', version, {
        domain,
        tenant,
        status: change.status,
        previous: change.previous,
        ...(change.reason ? { reason: change.reason } : {}),
      }),
    );
    if (opts.upsert) await this.publisher.publish(makeEvent('domain.upserted', version, { domain, tenant }));
    return version;
  }

  async removeDomain(domain: string): Promise<number> {
    const version = await this.store.nextVersion(`domain:${domain}`);
    await this.store.removeDomain(domain, version);
    await this.publisher.publish(makeEvent('domain.removed', version, { domain }));
    return version;
  }

  /** Revokes the stored certificate (its version is its expiry) and tells every task to drop it. */
  async revokeCert(domain: string, reason?: string): Promise<number | undefined> {
    const stored = await this.store.getCert(domain);
    if (!stored) return undefined;
    await this.store.revokeCert(domain, stored.version);
    await this.publisher.publish(makeEvent('cert.revoked', stored.version, { domain, reason }));
    return stored.version;
  }

  /** A purge everywhere; the generation (ms, strictly increasing here) makes every replay a no-op. */
  async purge(request: PurgeRequest): Promise<number> {
    const generation = Math.max(Date.now(), this.lastGeneration + 1);
    this.lastGeneration = generation;
    const payload = { ...request, generation } as EventOf<'cache.purge'>['payload'];
    const event = makeEvent('cache.purge', generation, payload);
    await this.store.recordPurge(payload.tenant, purgeField(event.payload), generation);
    await this.publisher.publish(event);
    return generation;
  }
}

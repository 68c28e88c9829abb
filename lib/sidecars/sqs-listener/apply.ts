import { servedStatus } from '../../core/domain-status.ts';
import type { EdgeEvent } from '../../core/events/schema.ts';
import type { Store } from '../../core/store/store.ts';
import type { Replica, Write } from '../listener-runtime/replica.ts';
import type { PurgePayload } from './edge-control.ts';

export class NotYetInStoreError extends Error {
  override name = 'NotYetInStoreError';
}

/** What the applier needs from the task's edge. */
export interface Purger {
  purge(p: PurgePayload): Promise<unknown>;
  /** Drops the edge's cached copy of a certificate (so a renewal or revocation is served at once). */
  forgetCert?(domain: string): Promise<void>;
}

export type ApplyResult = 'applied' | 'stale';

/**
 * Applies one event to the task's Redis. Idempotent and order-free: every write carries the
 * entity's version and the replica keeps only the newest (a removal beats an upsert of the same
 * version), so duplicates and late arrivals change nothing.
 */
export class Applier {
  constructor(
    private readonly replica: Replica,
    private readonly store: Store,
    private readonly edge: Purger,
    private readonly warn: (obj: object, msg: string) => void = () => {},
  ) {}

  async apply(event: EdgeEvent): Promise<ApplyResult> {
    const keys = this.replica.keys;
    const v = event.version;
    switch (event.type) {
      case 'tenant.upserted': {
        const { id, origin, hsts } = event.payload;
        return this.write({
          op: 'set',
          entity: `tenant:${id}`,
          version: v,
          key: keys.tenant(id),
          value: JSON.stringify({ id, origin, ...(hsts ? { hsts } : {}), version: v }),
        });
      }
      case 'tenant.removed':
        return this.write({
          op: 'del',
          entity: `tenant:${event.payload.id}`,
          version: v,
          key: keys.tenant(event.payload.id),
        });
      case 'domain.upserted': {
        const { domain, tenant } = event.payload;
        return this.write({
          op: 'set',
          entity: `domain:${domain}`,
          version: v,
          key: keys.domain(domain),
          value: JSON.stringify({ domain, tenant, version: v }),
        });
      }
      case 'domain.removed':
        return this.write({
          op: 'del',
          entity: `domain:${event.payload.domain}`,
          version: v,
          key: keys.domain(event.payload.domain),
        });
      case 'domain.status': {
        // Every status change moves the domain's version in the table (one sequence per entity),
        // so the edge record follows it here rather than only on the next bootstrap: a verified
        // domain is served at this version, a pending one is not (as the bootstrap writes it).
        const { domain, tenant, status } = event.payload;
        const base = { entity: `domain:${domain}`, version: v, key: keys.domain(domain) };
        if (!servedStatus(status)) return this.write({ op: 'del', ...base });
        return this.write({ op: 'set', ...base, value: JSON.stringify({ domain, tenant, version: v }) });
      }
      case 'cert.revoked': {
        const { domain } = event.payload;
        const result = await this.write({
          op: 'del',
          entity: `cert:${domain}`,
          version: v,
          key: keys.cert(domain),
        });
        return this.certWritten(domain, result);
      }
      case 'cert.issued':
        return this.certIssued(event.payload.domain, v);
      case 'cache.purge':
        await this.edge.purge(event.payload);
        return 'applied';
    }
  }

  private async certIssued(domain: string, version: number): Promise<ApplyResult> {
    const entity = `cert:${domain}`;
    const known = await this.replica.known(entity);
    // Already have it (or newer): no store read, no key decryption. When it is this very version,
    // this task's issuer (or lua-resty-auto-ssl) wrote it and the edge may still hold the one it
    // renewed: let the edge forget it too (cheap: the edge re-reads Redis and finds it unchanged).
    if (known && known.version >= version) {
      return known.version === version ? this.certWritten(domain, 'stale', true) : 'stale';
    }
    const stored = await this.store.getCert(domain);
    if (!stored || stored.version < version) {
      // The global table has not replicated it to this region yet: retried by the bus.
      throw new NotYetInStoreError(`certificate ${domain} v${version} is not in the store yet`);
    }
    const key = this.replica.keys.cert(domain);
    const result =
      stored.state === 'revoked'
        ? await this.write({ op: 'del', entity, version: stored.version, key })
        : await this.write({
            op: 'set',
            entity,
            version: stored.version,
            key,
            value: JSON.stringify(stored.record),
          });
    return this.certWritten(domain, result);
  }

  /** A certificate changed here: the edge drops its cached copy (best effort; it expires anyway). */
  private async certWritten(domain: string, result: ApplyResult, always = false): Promise<ApplyResult> {
    if ((result === 'applied' || always) && this.edge.forgetCert) {
      try {
        await this.edge.forgetCert(domain);
      } catch (err) {
        this.warn({ err, domain }, 'edge did not forget its copy of the certificate');
      }
    }
    return result;
  }

  private async write(w: Write): Promise<ApplyResult> {
    return (await this.replica.apply(w)) ? 'applied' : 'stale';
  }
}

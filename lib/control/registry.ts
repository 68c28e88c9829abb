import { type DomainStatus, statusOf } from '../core/domain-status.ts';
import type { TenantHsts } from '../core/redis-format.ts';
import type { DomainItem, Origin, TenantItem } from '../core/store/items.ts';
import type { Store } from '../core/store/store.ts';

export interface TenantEntry {
  readonly id: string;
  readonly origin: Origin;
  /** Strict-Transport-Security on the tenant's hosts; absent: off. */
  readonly hsts?: TenantHsts;
  readonly version: number;
}

export interface DomainEntry {
  readonly domain: string;
  readonly tenant: string;
  readonly version: number;
  /** Onboarding status; a record from before statuses reads as `verified`. */
  readonly status: DomainStatus;
  /** Why it failed or moved away. */
  readonly reason?: string;
  /** Unix ms of the first ownership proof (absent while pending). */
  readonly verifiedAt?: number;
}

export interface Registry {
  readonly tenants: TenantEntry[];
  readonly domains: DomainEntry[];
}

/**
 * The live tenants and domains, read with a parallel scan of the table. The table has no index by
 * tenant: listing is an operator's action, rare enough that a scan is cheaper than an index.
 */
export async function readRegistry(store: Store): Promise<Registry> {
  const tenants: TenantEntry[] = [];
  const domains: DomainEntry[] = [];
  await store.scan({
    onPage: async (items) => {
      for (const item of items) {
        if (item.kind === 'tenant') {
          const t = liveTenant(item);
          if (t) tenants.push(t);
        } else if (item.kind === 'domain') {
          const d = liveDomain(item);
          if (d) domains.push(d);
        }
      }
    },
  });
  tenants.sort((a, b) => a.id.localeCompare(b.id));
  domains.sort((a, b) => a.domain.localeCompare(b.domain));
  return { tenants, domains };
}

export function liveTenant(item: TenantItem | undefined): TenantEntry | undefined {
  if (!item || item.deleted || !item.origin) return undefined;
  return {
    id: item.id,
    origin: item.origin,
    ...(item.hsts ? { hsts: item.hsts } : {}),
    version: item.version,
  };
}

export function liveDomain(item: DomainItem | undefined): DomainEntry | undefined {
  if (!item || item.deleted || !item.tenant) return undefined;
  return {
    domain: item.domain,
    tenant: item.tenant,
    version: item.version,
    status: statusOf(item),
    ...(item.reason ? { reason: item.reason } : {}),
    ...(item.verifiedAt !== undefined ? { verifiedAt: item.verifiedAt } : {}),
  };
}

import type { DomainState } from '../domain-status.ts';
import type { CertRecord, TenantHsts } from '../redis-format.ts';
import type { Envelope } from './envelope.ts';

/** The table's keys for the items this store owns (the schema is documented in lib/core/table.ts). */
export const keys = {
  tenant: (id: string) => ({ PK: `TENANT#${id}`, SK: 'TENANT' }),
  purge: (tenant: string) => ({ PK: `TENANT#${tenant}`, SK: 'PURGE' }),
  domain: (domain: string) => ({ PK: `DOMAIN#${domain}`, SK: 'DOMAIN' }),
  cert: (domain: string) => ({ PK: `DOMAIN#${domain}`, SK: 'CERT' }),
  eventVersion: (entity: string) => ({ PK: `EVENT#${entity}`, SK: 'VERSION' }),
} as const;

/** Purge generations are attributes named `g:<field>` of the tenant's PURGE item. */
export const PURGE_ATTR_PREFIX = 'g:';

export type Origin =
  | { type: 's3-website'; endpoint: string; prefix?: string }
  | { type: 'http'; url: string };

export interface TenantItem {
  readonly kind: 'tenant';
  readonly id: string;
  readonly version: number;
  /** Absent on a tombstone. */
  readonly origin?: Origin;
  /** The tenant's HSTS; absent: off. */
  readonly hsts?: TenantHsts;
  readonly deleted?: boolean;
}

export interface DomainItem extends DomainState {
  readonly kind: 'domain';
  readonly domain: string;
  readonly version: number;
  readonly tenant?: string;
  readonly deleted?: boolean;
}

export interface CertItem {
  readonly kind: 'cert';
  readonly domain: string;
  /** The certificate's expiry (Unix seconds). */
  readonly version: number;
  readonly fullchain_pem?: string;
  readonly cert_pem?: string;
  readonly expiry?: number;
  readonly key?: Envelope;
  readonly deleted?: boolean;
}

export interface PurgeItem {
  readonly kind: 'purge';
  readonly tenant: string;
  /** Field as the edge names it (t, h:<host>, p:<prefix>, u:<host><path>) → generation (ms). */
  readonly generations: Record<string, number>;
}

export type StoredItem = TenantItem | DomainItem | CertItem | PurgeItem;

/** A certificate as read back: the record in lua-resty-auto-ssl's format, or a revocation. */
export type StoredCert =
  | { readonly state: 'live'; readonly version: number; readonly record: CertRecord }
  | { readonly state: 'revoked'; readonly version: number };

/** Tombstones outlive any event still in flight (SQS keeps a message at most 14 days). */
export const TOMBSTONE_TTL_SECONDS = 14 * 24 * 3600;

export function decodeItem(raw: Record<string, unknown>): StoredItem | undefined {
  const sk = raw.SK;
  if (sk === 'PURGE') {
    const generations: Record<string, number> = {};
    for (const [k, v] of Object.entries(raw)) {
      if (k.startsWith(PURGE_ATTR_PREFIX) && typeof v === 'number') {
        generations[k.slice(PURGE_ATTR_PREFIX.length)] = v;
      }
    }
    return { kind: 'purge', tenant: String(raw.PK).slice('TENANT#'.length), generations };
  }
  if (sk === 'TENANT' || sk === 'DOMAIN' || sk === 'CERT') {
    if (typeof raw.expiresAt === 'number' && raw.expiresAt < Date.now() / 1000) return undefined;
    return raw as unknown as StoredItem;
  }
  // Leases, issuance state, budgets and event counters are not part of a task's hot state.
  return undefined;
}

import type { Origin } from '../core/store/items.ts';
import type { ControlContext } from './context.ts';
import { NotFoundError } from './errors.ts';
import { type DomainEntry, liveTenant, readRegistry, type TenantEntry } from './registry.ts';
import * as valid from './validation.ts';

/** A tenant's settings besides its origin. */
export interface TenantSettings {
  /** Strict-Transport-Security on the tenant's hosts (validated here); absent: off. */
  readonly hsts?: {
    readonly maxAgeSeconds: number;
    readonly includeSubDomains?: boolean;
    readonly preload?: boolean;
  };
}

export interface TenantAdded {
  readonly tenant: TenantEntry;
  /** False when an existing tenant's origin was replaced. */
  readonly created: boolean;
}

export interface TenantRemoved {
  readonly id: string;
  readonly version: number;
  /** Domains removed (and announced) with it. */
  readonly domains: readonly string[];
}

export interface TenantSummary extends TenantEntry {
  readonly domains: number;
}

export interface TenantDetails extends TenantEntry {
  readonly domains: readonly DomainEntry[];
  /** Purge field (t, h:<host>, p:<prefix>, u:<host><path>) → generation (ms). */
  readonly purges: Readonly<Record<string, number>>;
}

/** tenant add / remove / list / show. */
export class Tenants {
  constructor(private readonly ctx: ControlContext) {}

  /**
   * Creates the tenant or replaces its settings: the origin, and HSTS (off unless given, so a
   * replacement without it turns HSTS off).
   */
  async add(id: string, origin: Origin, settings: TenantSettings = {}): Promise<TenantAdded> {
    const tenantId = valid.tenantId(id);
    const o = valid.origin(origin);
    const hsts = settings.hsts === undefined ? undefined : valid.hsts(settings.hsts);
    const existing = liveTenant(await this.ctx.store.getTenant(tenantId));
    const version = await this.ctx.announcer.upsertTenant(tenantId, o, hsts ? { hsts } : {});
    return {
      tenant: { id: tenantId, origin: o, ...(hsts ? { hsts } : {}), version },
      created: !existing,
    };
  }

  /** Removes the tenant's domains first (no domain ever names a missing tenant), then the tenant. */
  async remove(id: string): Promise<TenantRemoved> {
    const tenantId = valid.tenantId(id);
    await this.require(tenantId);
    const { domains } = await readRegistry(this.ctx.store);
    const owned = domains.filter((d) => d.tenant === tenantId).map((d) => d.domain);
    for (const domain of owned) await this.ctx.announcer.removeDomain(domain);
    const version = await this.ctx.announcer.removeTenant(tenantId);
    return { id: tenantId, version, domains: owned };
  }

  async list(): Promise<TenantSummary[]> {
    const { tenants, domains } = await readRegistry(this.ctx.store);
    const counts = new Map<string, number>();
    for (const d of domains) counts.set(d.tenant, (counts.get(d.tenant) ?? 0) + 1);
    return tenants.map((t) => ({ ...t, domains: counts.get(t.id) ?? 0 }));
  }

  async show(id: string): Promise<TenantDetails> {
    const tenantId = valid.tenantId(id);
    const tenant = await this.require(tenantId);
    const [{ domains }, purges] = await Promise.all([
      readRegistry(this.ctx.store),
      this.ctx.store.getPurges(tenantId),
    ]);
    return { ...tenant, domains: domains.filter((d) => d.tenant === tenantId), purges };
  }

  /** The live tenant, or NotFoundError. */
  async require(id: string): Promise<TenantEntry> {
    const tenant = liveTenant(await this.ctx.store.getTenant(id));
    if (!tenant) throw new NotFoundError(`tenant "${id}" does not exist`);
    return tenant;
  }
}

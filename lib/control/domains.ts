import { type CertificateView, readCertificate } from './certificates.ts';
import type { ControlContext } from './context.ts';
import type { DnsCheckResult } from './dns/check.ts';
import { ConflictError, NotFoundError, ValidationError } from './errors.ts';
import { type DomainEntry, liveDomain, readRegistry } from './registry.ts';
import type { Tenants } from './tenants.ts';
import * as valid from './validation.ts';

export interface DomainAdded {
  readonly domain: DomainEntry;
  /** False when the domain was already the tenant's (the event is published again). */
  readonly created: boolean;
  /** How the domain reaches the edge, or `skipped`. */
  readonly dns: DnsCheckResult | 'skipped';
}

export interface DomainRemoved {
  readonly domain: string;
  readonly tenant: string;
  readonly version: number;
}

/** The purges that apply to one domain's URLs. Generations are ms since the epoch. */
export interface DomainPurges {
  /** The newest purge of the whole tenant. */
  readonly tenant?: number;
  /** The newest purge of this host. */
  readonly host?: number;
  /** Prefix purges of the tenant (they apply to every host of it). */
  readonly prefixes: number;
  /** URL purges on this host. */
  readonly urls: number;
  /** The newest generation of any of the above. */
  readonly latest?: number;
}

export interface DomainDetails extends DomainEntry {
  readonly certificate: CertificateView;
  readonly purges: DomainPurges;
}

/** domain add / remove / list / show. */
export class Domains {
  constructor(
    private readonly ctx: ControlContext,
    private readonly tenants: Tenants,
  ) {}

  /**
   * Registers the domain for a tenant after checking that it points at the edge: a domain that
   * does not would only collect failed certificate orders.
   */
  async add(domain: string, tenant: string, opts: { skipDnsCheck?: boolean } = {}): Promise<DomainAdded> {
    const name = valid.customDomain(domain);
    const tenantId = valid.tenantId(tenant);
    if (!opts.skipDnsCheck && !this.ctx.dnsCheck) {
      throw new ValidationError(
        'the DNS check needs the edge CNAME target or edge addresses: configure them, or skip the check',
      );
    }
    await this.tenants.require(tenantId);
    const existing = liveDomain(await this.ctx.store.getDomain(name));
    if (existing && existing.tenant !== tenantId) {
      throw new ConflictError(`domain ${name} belongs to tenant "${existing.tenant}": remove it first`);
    }
    const dns = opts.skipDnsCheck || !this.ctx.dnsCheck ? 'skipped' : await this.ctx.dnsCheck.check(name);
    const version = await this.ctx.announcer.upsertDomain(name, tenantId);
    return { domain: { domain: name, tenant: tenantId, version }, created: !existing, dns };
  }

  async remove(domain: string): Promise<DomainRemoved> {
    const existing = await this.require(valid.hostname(domain));
    const version = await this.ctx.announcer.removeDomain(existing.domain);
    return { domain: existing.domain, tenant: existing.tenant, version };
  }

  async list(opts: { tenant?: string } = {}): Promise<DomainEntry[]> {
    const tenantId = opts.tenant === undefined ? undefined : valid.tenantId(opts.tenant);
    if (tenantId) await this.tenants.require(tenantId);
    const { domains } = await readRegistry(this.ctx.store);
    return tenantId ? domains.filter((d) => d.tenant === tenantId) : domains;
  }

  async show(domain: string): Promise<DomainDetails> {
    const entry = await this.require(valid.hostname(domain));
    const [certificate, generations] = await Promise.all([
      readCertificate(this.ctx.certificates, entry.domain, {
        renewBeforeDays: this.ctx.renewBeforeDays,
        now: this.ctx.now(),
      }),
      this.ctx.store.getPurges(entry.tenant),
    ]);
    return { ...entry, certificate, purges: domainPurges(entry.domain, generations) };
  }

  async require(name: string): Promise<DomainEntry> {
    const entry = liveDomain(await this.ctx.store.getDomain(name));
    if (!entry) throw new NotFoundError(`domain ${name} is not registered`);
    return entry;
  }
}

function domainPurges(domain: string, generations: Record<string, number>): DomainPurges {
  let prefixes = 0;
  let urls = 0;
  let latest: number | undefined;
  const urlField = `u:${domain}/`;
  for (const [field, gen] of Object.entries(generations)) {
    const applies =
      field === 't' || field === `h:${domain}` || field.startsWith('p:') || field.startsWith(urlField);
    if (!applies) continue;
    if (field.startsWith('p:')) prefixes += 1;
    if (field.startsWith(urlField)) urls += 1;
    latest = Math.max(latest ?? 0, gen);
  }
  return { tenant: generations.t, host: generations[`h:${domain}`], prefixes, urls, latest };
}

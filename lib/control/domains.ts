import { delegatedName, delegationTarget } from '../core/delegation.ts';
import { registeredDomain } from '../core/domain-names.ts';
import type { DomainStatus } from '../core/domain-status.ts';
import { type CertificateView, readCertificate } from './certificates.ts';
import type { ControlContext } from './context.ts';
import { type CaaProblem, checkCaa } from './dns/caa.ts';
import type { DnsCheckResult } from './dns/check.ts';
import { ConflictError, NotFoundError, ValidationError } from './errors.ts';
import { newVerifyToken, proveOwnership, VERIFY_PATH, verifyName } from './ownership.ts';
import { type DomainEntry, liveDomain, readRegistry } from './registry.ts';
import type { Tenants } from './tenants.ts';
import * as valid from './validation.ts';

/** A DNS record the tenant creates (or keeps), with whether it is there now. */
export interface DnsInstruction {
  readonly purpose: 'ownership' | 'routing' | 'challenge' | 'caa';
  readonly type: 'TXT' | 'CNAME' | 'A' | 'AAAA' | 'ALIAS' | 'CAA';
  readonly name: string;
  readonly value: string;
  /** Whether the record (or an equivalent: the HTTP token, another route to the edge) is in place. */
  readonly satisfied: boolean;
  readonly note?: string;
}

/** How the domain reaches the edge now, or why it does not (not an error: DNS may switch later). */
export type DnsState = DnsCheckResult | { readonly via: 'none'; readonly reason: string } | 'skipped';

export interface DomainAdded {
  readonly domain: DomainEntry;
  /** False when the domain was already the tenant's. */
  readonly created: boolean;
  readonly dns: DnsState;
  /** The exact records to create; `satisfied` says which are in place. */
  readonly records: readonly DnsInstruction[];
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
  readonly records: readonly DnsInstruction[];
  /** A CAA record forbids the CA in use: the record to add. */
  readonly caa?: CaaProblem;
}

export interface AddOptions {
  /** Do not look at where the domain points (the result's `dns` is `skipped`). */
  readonly skipDnsCheck?: boolean;
  /**
   * The operator vouches for the owner: the domain starts `verified` (operators only; never
   * offered by the HTTP API).
   */
  readonly preverified?: boolean;
}

/** Statuses after which issuance state decides (the domain is verified and not moved away). */
const CERT_DRIVEN: ReadonlySet<DomainStatus> = new Set([
  'verified',
  'issuing',
  'active',
  'failed',
  'expiring',
]);

/** domain add / remove / list / show / verify / refresh. */
export class Domains {
  constructor(
    private readonly ctx: ControlContext,
    private readonly tenants: Tenants,
  ) {}

  /**
   * Registers the domain for a tenant as `pending_verification` with a fresh token, then tries
   * the proof at once (the TXT record may already be there). Pointing at the edge is not needed
   * yet (delegated DNS-01 issues before the switch) and proves nothing: a former tenant's
   * dangling CNAME points at the edge too.
   */
  async add(domain: string, tenant: string, opts: AddOptions = {}): Promise<DomainAdded> {
    const name = valid.customDomain(domain);
    const tenantId = valid.tenantId(tenant);
    if (valid.isWildcard(name) && !this.ctx.challengeZone)
      throw new ValidationError(
        `a wildcard (${name}) is issued only by delegated DNS-01, and no challenge zone is configured (EDGE_DNS01_CHALLENGE_ZONE, --challenge-zone)`,
      );
    await this.tenants.require(tenantId);
    const item = await this.ctx.store.getDomain(name);
    const existing = liveDomain(item);
    if (existing && existing.tenant !== tenantId) {
      throw new ConflictError(`domain ${name} belongs to tenant "${existing.tenant}": remove it first`);
    }
    const dns = opts.skipDnsCheck ? 'skipped' : await this.dnsState(name);
    if (existing) {
      const entry = opts.preverified ? await this.markVerified(existing) : await this.refresh(name);
      return { domain: entry, created: false, dns, records: await this.records(entry) };
    }
    const verifyToken = newVerifyToken();
    const state = opts.preverified
      ? { status: 'verified' as const, verifiedAt: this.ctx.now(), verifyToken }
      : { status: 'pending_verification' as const, verifyToken };
    await this.ctx.announcer.addDomain(name, tenantId, state);
    const entry = opts.preverified ? await this.require(name) : await this.verify(name);
    return { domain: entry, created: true, dns, records: await this.records(entry) };
  }

  async remove(domain: string): Promise<DomainRemoved> {
    const existing = await this.require(valid.domainName(domain));
    const version = await this.ctx.announcer.removeDomain(existing.domain);
    return { domain: existing.domain, tenant: existing.tenant, version };
  }

  async list(opts: { tenant?: string } = {}): Promise<DomainEntry[]> {
    const tenantId = opts.tenant === undefined ? undefined : valid.tenantId(opts.tenant);
    if (tenantId) await this.tenants.require(tenantId);
    const { domains } = await readRegistry(this.ctx.store);
    return tenantId ? domains.filter((d) => d.tenant === tenantId) : domains;
  }

  /** The domain, its status brought up to date, its certificate and the DNS records to create. */
  async show(domain: string): Promise<DomainDetails> {
    const entry = await this.refresh(valid.domainName(domain));
    const [certificate, generations, records, caa] = await Promise.all([
      this.certificate(entry.domain),
      this.ctx.store.getPurges(entry.tenant),
      this.records(entry),
      entry.status === 'active'
        ? undefined
        : checkCaa(this.ctx.resolver, valid.baseDomain(entry.domain), this.ctx.caaIdentities, {
            wildcard: valid.isWildcard(entry.domain),
          }),
    ]);
    return {
      ...entry,
      certificate,
      purges: domainPurges(entry.domain, generations),
      records: caa ? [...records, { purpose: 'caa', ...caa.add, satisfied: false }] : records,
      ...(caa ? { caa } : {}),
    };
  }

  /** Looks for the ownership proof of a pending domain; a verified one is returned as it is. */
  async verify(domain: string): Promise<DomainEntry> {
    const entry = await this.require(valid.domainName(domain));
    if (entry.verifiedAt !== undefined || entry.status !== 'pending_verification') return entry;
    const token = (await this.ctx.store.getDomain(entry.domain))?.verifyToken;
    if (!token) return entry;
    // A wildcard is proved on its base domain (its TXT name, or the token served by that host).
    const at = valid.baseDomain(entry.domain);
    const proof = await proveOwnership(this.ctx.resolver, this.ctx.fetchToken, at, token);
    return proof.proved ? this.markVerified(entry) : entry;
  }

  /**
   * Brings the stored status up to date: a pending domain looks for its proof; a verified one
   * follows its certificate (issuing, active, failed with the reason, expiring). With `recheck`
   * (the scheduler's sweep) a verified domain must still point at the edge or still show its token;
   * one that lost both is marked `moved_away` and keeps being served: a deleted record or a DNS
   * outage must never take a paying tenant offline.
   */
  async refresh(domain: string, opts: { recheck?: boolean } = {}): Promise<DomainEntry> {
    const entry = await this.verify(domain);
    if (entry.status === 'pending_verification') return entry;
    let next: { status: DomainStatus; reason?: string } | undefined;
    if (opts.recheck) {
      const lost = await this.lostProof(entry);
      if (lost) next = { status: 'moved_away', reason: lost };
    }
    if (!next && (CERT_DRIVEN.has(entry.status) || entry.status === 'moved_away')) {
      next = fromCertificate(await this.certificate(entry.domain));
      if (
        valid.isWildcard(entry.domain) &&
        (next.status === 'verified' || next.status === 'issuing') &&
        !(await this.delegated(entry.domain))
      ) {
        next = { status: next.status, reason: this.wildcardWaits(entry.domain) };
      }
    }
    if (!next || (next.status === entry.status && next.reason === entry.reason)) return entry;
    const version = await this.ctx.announcer.changeDomainStatus(entry.domain, entry.tenant, {
      ...next,
      previous: entry.status,
    });
    return version === undefined
      ? await this.require(entry.domain)
      : { ...entry, ...next, ...(next.reason ? {} : { reason: undefined }), version };
  }

  /**
   * The deployment's one periodic pass (the API server's loop locally, an EventBridge schedule on
   * AWS): every domain refreshed with the re-check. Returns the domains marked moved_away or
   * failed, for the caller to log and alarm on; one domain's error does not stop the others.
   */
  async sweep(): Promise<{ checked: number; attention: DomainEntry[]; errors: string[] }> {
    const { domains } = await readRegistry(this.ctx.store);
    const attention: DomainEntry[] = [];
    const errors: string[] = [];
    for (const d of domains) {
      try {
        const after = await this.refresh(d.domain, { recheck: true });
        if (after.status === 'moved_away' || after.status === 'failed') attention.push(after);
      } catch (err) {
        errors.push(`${d.domain}: ${(err as Error).message}`);
      }
    }
    return { checked: domains.length, attention, errors };
  }

  /** The exact records the tenant creates: ownership TXT, routing (apex by address), satisfied or not. */
  async records(entry: DomainEntry): Promise<DnsInstruction[]> {
    const out: DnsInstruction[] = [];
    const verified = entry.verifiedAt !== undefined || entry.status !== 'pending_verification';
    const token = (await this.ctx.store.getDomain(entry.domain))?.verifyToken;
    const wildcard = valid.isWildcard(entry.domain);
    const base = valid.baseDomain(entry.domain);
    if (token) {
      out.push({
        purpose: 'ownership',
        type: 'TXT',
        name: verifyName(base),
        value: token,
        satisfied: verified,
        note: `or serve the value at http://${base}${VERIFY_PATH}; keep it: it is re-checked${
          wildcard ? ` (a wildcard is proved on ${base}; a TXT name may hold several values)` : ''
        }`,
      });
    }
    const zone = this.ctx.challengeZone;
    if (zone) {
      // Delegated DNS-01: optional for a name (it issues before the DNS switch), required for *.<domain>.
      out.push({
        purpose: 'challenge',
        type: 'CNAME',
        name: delegatedName(entry.domain),
        value: delegationTarget(entry.domain, zone),
        satisfied: await this.delegated(entry.domain),
        note: wildcard
          ? `required: a wildcard is issued only by delegated DNS-01 (at ${base}'s _acme-challenge name)`
          : 'optional: the certificate is then issued before the domain points at the edge, and *.<domain> can be served',
      });
    }
    const edge = this.ctx.edge;
    if (edge) {
      const dns = await this.dnsState(entry.domain);
      const satisfied = typeof dns === 'object' && dns.via !== 'none';
      const apex = registeredDomain(entry.domain) === entry.domain;
      if (!apex && edge.cname) {
        out.push({ purpose: 'routing', type: 'CNAME', name: entry.domain, value: edge.cname, satisfied });
      } else {
        for (const address of edge.addresses ?? []) {
          out.push({
            purpose: 'routing',
            type: address.includes(':') ? 'AAAA' : 'A',
            name: entry.domain,
            value: address,
            satisfied,
          });
        }
        if (edge.cname && apex) {
          out.push({
            purpose: 'routing',
            type: 'ALIAS',
            name: entry.domain,
            value: edge.cname,
            satisfied,
            note: 'an apex cannot have a CNAME: an ALIAS/ANAME/flattened CNAME where the DNS provider has one, else the A/AAAA records',
          });
        }
      }
    }
    return out;
  }

  async require(name: string): Promise<DomainEntry> {
    const entry = liveDomain(await this.ctx.store.getDomain(name));
    if (!entry) throw new NotFoundError(`domain ${name} is not registered`);
    return entry;
  }

  private async markVerified(entry: DomainEntry): Promise<DomainEntry> {
    if (entry.verifiedAt !== undefined || entry.status !== 'pending_verification') return entry;
    const verifiedAt = this.ctx.now();
    const version = await this.ctx.announcer.changeDomainStatus(
      entry.domain,
      entry.tenant,
      { status: 'verified', previous: entry.status, verifiedAt },
      { upsert: true },
    );
    return version === undefined
      ? await this.require(entry.domain)
      : { ...entry, status: 'verified', version, verifiedAt, reason: undefined };
  }

  /** Why the domain no longer proves control, or undefined while it does. */
  private async lostProof(entry: DomainEntry): Promise<string | undefined> {
    const dns = await this.dnsState(entry.domain);
    if (typeof dns === 'object' && dns.via !== 'none') return undefined;
    const token = (await this.ctx.store.getDomain(entry.domain))?.verifyToken;
    const at = valid.baseDomain(entry.domain);
    if (token && (await proveOwnership(this.ctx.resolver, this.ctx.fetchToken, at, token)).proved) {
      return undefined;
    }
    const why = typeof dns === 'object' && dns.via === 'none' ? dns.reason : 'no edge targets configured';
    return `${why}; and the ownership token is gone`;
  }

  /** Whether `_acme-challenge.<base>` is CNAMEd to the domain's name in the challenge zone. */
  private async delegated(domain: string): Promise<boolean> {
    const zone = this.ctx.challengeZone;
    if (!zone) return false;
    const value = delegationTarget(domain, zone);
    const cnames = await this.ctx.resolver.resolveCname(delegatedName(domain)).catch(() => [] as string[]);
    return cnames.some((c) => c.toLowerCase().replace(/\.$/, '') === value);
  }

  /** The status reason of a verified wildcard without its delegation. */
  private wildcardWaits(domain: string): string {
    const zone = this.ctx.challengeZone;
    const cname = zone ? ` ${delegationTarget(domain, zone)}` : '';
    return `a wildcard is issued only by delegated DNS-01: waiting for the CNAME ${delegatedName(domain)}${cname}`;
  }

  private async dnsState(name: string): Promise<DnsState> {
    if (!this.ctx.dnsCheck) return 'skipped';
    try {
      return await this.ctx.dnsCheck.check(name);
    } catch (err) {
      return { via: 'none', reason: (err as Error).message };
    }
  }

  private certificate(domain: string): Promise<CertificateView> {
    return readCertificate(this.ctx.certificates, domain, {
      renewBeforeDays: this.ctx.renewBeforeDays,
      now: this.ctx.now(),
    });
  }
}

/** A verified domain's status as its certificate and issuance state say. */
function fromCertificate(cert: CertificateView): { status: DomainStatus; reason?: string } {
  switch (cert.state) {
    case 'none':
      return { status: 'verified' };
    case 'pending':
      return { status: 'issuing' };
    case 'issued':
      return { status: 'active' };
    case 'expiring':
    case 'expired':
      return cert.reason ? { status: 'expiring', reason: cert.reason } : { status: 'expiring' };
    case 'failed':
      return { status: 'failed', reason: cert.reason ?? 'issuance failed' };
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

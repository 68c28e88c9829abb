import type { Origin } from '../../core/store/items.ts';
import type { CertificateView } from '../certificates.ts';
import type { DnsInstruction, DomainAdded, DomainDetails, DomainPurges, DomainRemoved } from '../domains.ts';
import type { Purged } from '../purge.ts';
import type { DomainEntry, TenantEntry } from '../registry.ts';
import type { TenantAdded, TenantDetails, TenantRemoved, TenantSummary } from '../tenants.ts';

/** Human-readable output, one function per command result. JSON output is the result itself. */

export function origin(o: Origin): string {
  if (o.type === 'http') return `http ${o.url}`;
  return `s3-website ${o.endpoint}${o.prefix ? ` prefix ${o.prefix}` : ''}`;
}

function time(ms: number | undefined): string {
  return ms === undefined ? '-' : new Date(ms).toISOString();
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

function fields(pairs: [string, string][]): string {
  const width = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}

export function tenantAdded(r: TenantAdded): string {
  return `tenant ${r.tenant.id} ${r.created ? 'created' : 'updated'} (version ${r.tenant.version}): origin ${origin(r.tenant.origin)}${r.tenant.hsts ? `; HSTS ${hsts(r.tenant.hsts)}` : ''}`;
}

/** As the header reads, or "off". */
function hsts(h: TenantEntry['hsts']): string {
  if (!h) return 'off';
  return [`max-age=${h.maxAgeSeconds}`, h.includeSubDomains && 'includeSubDomains', h.preload && 'preload']
    .filter(Boolean)
    .join('; ');
}

export function tenantRemoved(r: TenantRemoved): string {
  const domains = r.domains.length ? `; domains removed: ${r.domains.join(', ')}` : '';
  return `tenant ${r.id} removed (version ${r.version})${domains}`;
}

export function tenantList(rows: readonly TenantSummary[]): string {
  if (!rows.length) return 'no tenants';
  return table(
    ['TENANT', 'DOMAINS', 'ORIGIN'],
    rows.map((t) => [t.id, String(t.domains), origin(t.origin)]),
  );
}

export function tenantShow(t: TenantDetails): string {
  const purges = Object.entries(t.purges).sort(([, a], [, b]) => b - a);
  return fields([
    ['tenant', t.id],
    ['version', String(t.version)],
    ['origin', origin(t.origin)],
    ['hsts', hsts(t.hsts)],
    ['domains', t.domains.length ? t.domains.map((d) => d.domain).join(', ') : '-'],
    [
      'purges',
      purges.length
        ? purges
            .slice(0, 5)
            .map(([f, g]) => `${f} ${time(g)}`)
            .join(', ') + (purges.length > 5 ? ` (+${purges.length - 5} more)` : '')
        : '-',
    ],
  ]);
}

export function domainAdded(r: DomainAdded): string {
  const dns =
    r.dns === 'skipped'
      ? 'DNS check skipped'
      : r.dns.via === 'none'
        ? `DNS: not pointing at the edge yet (${r.dns.reason})`
        : r.dns.via === 'cname'
          ? `DNS: CNAME ${r.dns.chain.join(' -> ')}`
          : `DNS: ${r.dns.addresses.join(', ')}`;
  const what = r.created ? 'added to' : 'already belongs to';
  return [
    `domain ${r.domain.domain} ${what} tenant ${r.domain.tenant} (version ${r.domain.version}): ${status(r.domain)}; ${dns}`,
    records(r.records),
  ]
    .filter(Boolean)
    .join('\n');
}

/** The status with its reason. */
export function status(d: { status: string; reason?: string }): string {
  return d.reason ? `${d.status} (${d.reason})` : d.status;
}

/** The DNS records still to create, one a line. */
export function records(rows: readonly DnsInstruction[]): string {
  const missing = rows.filter((r) => !r.satisfied);
  if (!missing.length) return '';
  return `records to create:\n${table(
    ['PURPOSE', 'TYPE', 'NAME', 'VALUE'],
    missing.map((r) => [r.purpose, r.type, r.name, r.value]),
  )}`;
}

export function domainRemoved(r: DomainRemoved): string {
  return `domain ${r.domain} removed from tenant ${r.tenant} (version ${r.version})`;
}

export function domainList(rows: readonly DomainEntry[]): string {
  if (!rows.length) return 'no domains';
  return table(
    ['DOMAIN', 'TENANT', 'STATUS'],
    rows.map((d) => [d.domain, d.tenant, status(d)]),
  );
}

function certificate(c: CertificateView): [string, string][] {
  const out: [string, string][] = [['certificate', c.state]];
  if (c.expiry !== undefined) out.push(['expires', time(c.expiry * 1000)]);
  if (c.issuer) out.push(['issuer', c.issuer]);
  if (c.serial) out.push(['serial', c.serial]);
  if (c.reason) out.push(['last failure', c.reason]);
  if (c.nextAttemptAt !== undefined) out.push(['next attempt', time(c.nextAttemptAt)]);
  return out;
}

function purges(p: DomainPurges): string {
  if (p.latest === undefined) return 'none';
  return [
    `latest ${time(p.latest)}`,
    `tenant ${time(p.tenant)}`,
    `host ${time(p.host)}`,
    `${p.prefixes} prefix`,
    `${p.urls} url`,
  ].join(', ');
}

export function domainShow(d: DomainDetails): string {
  return (
    fields([
      ['domain', d.domain],
      ['tenant', d.tenant],
      ['version', String(d.version)],
      ['status', status(d)],
      ...certificate(d.certificate),
      ['purges', purges(d.purges)],
    ]) + (records(d.records) ? `\n${records(d.records)}` : '')
  );
}

export function purged(p: Purged): string {
  const what = p.scope === 'tenant' ? 'everything' : `${p.scope} ${p.target}`;
  return `purged ${what} of tenant ${p.tenant} (generation ${p.generation}, ${time(p.generation)})`;
}

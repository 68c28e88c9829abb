import type { DnsResolver } from '../../lib/control/dns/resolver.ts';

type Records = {
  cname?: string;
  a?: string[];
  aaaa?: string[];
  txt?: string[];
  caa?: { critical: number; issue?: string; issuewild?: string }[];
  error?: string;
};

function dnsError(code: string, name: string): Error {
  return Object.assign(new Error(`query ${code} ${name}`), { code, hostname: name });
}

/**
 * A zone in memory: names absent from it are NXDOMAIN (ENOTFOUND), a name without a record of the
 * asked type is ENODATA, and A/AAAA follow CNAMEs as a recursive resolver does.
 */
export class FakeResolver implements DnsResolver {
  readonly queries: string[] = [];
  constructor(private readonly zone: Record<string, Records>) {}

  private find(name: string): Records {
    const r = this.zone[name];
    if (!r) throw dnsError('ENOTFOUND', name);
    if (r.error) throw dnsError(r.error, name);
    return r;
  }

  async resolveCname(name: string): Promise<string[]> {
    this.queries.push(`CNAME ${name}`);
    const r = this.find(name);
    if (!r.cname) throw dnsError('ENODATA', name);
    return [r.cname];
  }

  async resolve4(name: string): Promise<string[]> {
    this.queries.push(`A ${name}`);
    return this.follow(name, 'a');
  }

  async resolve6(name: string): Promise<string[]> {
    this.queries.push(`AAAA ${name}`);
    return this.follow(name, 'aaaa');
  }

  async resolveTxt(name: string): Promise<string[][]> {
    this.queries.push(`TXT ${name}`);
    const r = this.find(name);
    if (!r.txt?.length) throw dnsError('ENODATA', name);
    return r.txt.map((t) => [t]);
  }

  async resolveCaa(name: string): Promise<{ critical: number; issue?: string; issuewild?: string }[]> {
    this.queries.push(`CAA ${name}`);
    const r = this.find(name);
    if (!r.caa?.length) throw dnsError('ENODATA', name);
    return r.caa;
  }

  /** Changes the zone (a tenant adding or deleting a record). */
  set(name: string, records: Records | undefined): void {
    if (records) this.zone[name] = records;
    else delete this.zone[name];
  }

  private follow(name: string, type: 'a' | 'aaaa'): string[] {
    let r = this.find(name);
    for (let i = 0; r.cname && i < 10; i++) r = this.find(r.cname);
    const out = r[type];
    if (!out?.length) throw dnsError('ENODATA', name);
    return out;
  }
}

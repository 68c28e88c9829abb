import { Resolver } from 'node:dns/promises';

/**
 * The DNS lookups the domain check needs. Errors carry node's codes: ENOTFOUND (NXDOMAIN),
 * ENODATA (the name exists, not this type), anything else is a failed lookup.
 */
export interface DnsResolver {
  /** The name's CNAME target(s), one hop. */
  resolveCname(name: string): Promise<string[]>;
  /** A records, following CNAMEs. */
  resolve4(name: string): Promise<string[]>;
  /** AAAA records, following CNAMEs. */
  resolve6(name: string): Promise<string[]>;
  /** TXT records, each as its character strings (ownership tokens). */
  resolveTxt(name: string): Promise<string[][]>;
  /** CAA records at exactly this name. */
  resolveCaa(name: string): Promise<{ critical: number; issue?: string; issuewild?: string }[]>;
}

export interface NodeDnsResolverOptions {
  /** Resolvers to ask ("1.1.1.1", "[2606:4700::1111]:53"); default the system's. */
  readonly servers?: readonly string[];
  /** Per-query timeout; default 5000 ms. */
  readonly timeoutMs?: number;
}

/** node:dns/promises, with its own Resolver so a server list never changes the process's. */
export class NodeDnsResolver implements DnsResolver {
  private readonly resolver: Resolver;

  constructor(opts: NodeDnsResolverOptions = {}) {
    this.resolver = new Resolver({ timeout: opts.timeoutMs ?? 5000, tries: 2 });
    if (opts.servers?.length) this.resolver.setServers([...opts.servers]);
  }

  resolveCname(name: string): Promise<string[]> {
    return this.resolver.resolveCname(name);
  }

  resolve4(name: string): Promise<string[]> {
    return this.resolver.resolve4(name);
  }

  resolve6(name: string): Promise<string[]> {
    return this.resolver.resolve6(name);
  }

  resolveTxt(name: string): Promise<string[][]> {
    return this.resolver.resolveTxt(name);
  }

  resolveCaa(name: string): Promise<{ critical: number; issue?: string; issuewild?: string }[]> {
    return this.resolver.resolveCaa(name);
  }
}

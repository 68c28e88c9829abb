import { BlockList, isIP } from 'node:net';
import { DnsCheckError, ValidationError } from '../errors.ts';
import type { DnsResolver } from './resolver.ts';

/** Where custom domains must point: the platform's edge name, or its fixed addresses. */
export interface EdgeTargets {
  /** e.g. `edge.platform.example`: a CNAME to it (directly or through a chain) passes. */
  readonly cname?: string;
  /** A/AAAA records that are all among these pass (apex domains, ALIAS records). */
  readonly addresses?: readonly string[];
}

export interface DnsCheckResult {
  readonly domain: string;
  /** How the domain reaches the edge. */
  readonly via: 'cname' | 'address';
  /** The CNAME chain followed, then the addresses that matched (for the operator's record). */
  readonly chain: readonly string[];
  readonly addresses: readonly string[];
}

/** CNAME hops followed before giving up (a loop, or a chain no resolver would finish either). */
const MAX_HOPS = 8;

function normalize(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

function code(err: unknown): string {
  return String((err as NodeJS.ErrnoException).code ?? (err as Error).message);
}

/** Checks that `domain` resolves to the edge; throws DnsCheckError saying what it points at instead. */
export class DnsCheck {
  private readonly cname: string | undefined;
  private readonly addresses: BlockList;
  private readonly addressList: readonly string[];

  constructor(
    private readonly resolver: DnsResolver,
    targets: EdgeTargets,
  ) {
    this.cname = targets.cname ? normalize(targets.cname) : undefined;
    this.addressList = targets.addresses ?? [];
    this.addresses = new BlockList();
    for (const a of this.addressList) {
      const family = isIP(a);
      if (family === 0) throw new ValidationError(`invalid edge address "${a}": not an IPv4 or IPv6 address`);
      this.addresses.addAddress(a, family === 4 ? 'ipv4' : 'ipv6');
    }
    if (!this.cname && this.addressList.length === 0) {
      throw new ValidationError('the DNS check needs the edge CNAME target or at least one edge address');
    }
  }

  async check(domain: string): Promise<DnsCheckResult> {
    const chain: string[] = [];
    let name = domain;
    for (let hop = 0; hop < MAX_HOPS; hop++) {
      const target = await this.cnameOf(name);
      if (target === undefined) break;
      chain.push(target);
      if (target === this.cname) return { domain, via: 'cname', chain, addresses: [] };
      name = target;
    }
    const [v4, v6] = await Promise.all([this.lookup(domain, 'A'), this.lookup(domain, 'AAAA')]);
    const found = [...v4, ...v6];
    const foreign = found.filter((a) => !this.addresses.check(a, isIP(a) === 4 ? 'ipv4' : 'ipv6'));
    if (found.length > 0 && foreign.length === 0) return { domain, via: 'address', chain, addresses: found };
    const seen = [
      ...chain.map((c) => `CNAME ${c}`),
      ...v4.map((a) => `A ${a}`),
      ...v6.map((a) => `AAAA ${a}`),
    ];
    throw new DnsCheckError(
      `${domain} does not point at the edge: it resolves to ${seen.length ? seen.join(', ') : 'no CNAME, A or AAAA record'}; expected ${this.expected()}`,
    );
  }

  private expected(): string {
    const parts: string[] = [];
    if (this.cname) parts.push(`a CNAME to ${this.cname}`);
    if (this.addressList.length) parts.push(`A/AAAA records among ${this.addressList.join(', ')}`);
    return parts.join(' or ');
  }

  private async cnameOf(name: string): Promise<string | undefined> {
    try {
      const out = await this.resolver.resolveCname(name);
      return out[0] === undefined ? undefined : normalize(out[0]);
    } catch (err) {
      return this.absent(name, err);
    }
  }

  private async lookup(name: string, type: 'A' | 'AAAA'): Promise<string[]> {
    try {
      return type === 'A' ? await this.resolver.resolve4(name) : await this.resolver.resolve6(name);
    } catch (err) {
      return this.absent(name, err) ?? [];
    }
  }

  /** No record of this type is an answer; NXDOMAIN and failures end the check. */
  private absent(name: string, err: unknown): undefined {
    const c = code(err);
    if (c === 'ENODATA') return undefined;
    if (c === 'ENOTFOUND') throw new DnsCheckError(`${name} does not exist in DNS (NXDOMAIN)`);
    throw new DnsCheckError(`DNS lookup of ${name} failed: ${c}`);
  }
}

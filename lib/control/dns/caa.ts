import { registeredDomain } from '../../core/domain-names.ts';
import type { DnsResolver } from './resolver.ts';

export interface CaaProblem {
  /** Where the CAA set that applies lives. */
  readonly name: string;
  /** What it allows now. */
  readonly allows: readonly string[];
  /** The record to add so the CA in use may issue. */
  readonly add: { readonly type: 'CAA'; readonly name: string; readonly value: string };
}

/**
 * RFC 8659: the CAA set that applies is the first found climbing from the name towards its
 * registered domain. Returns the problem when that set has `issue` (or, for a wildcard, `issuewild`)
 * properties and none names a CA in use; undefined when issuance is allowed (or nothing was found).
 */
export async function checkCaa(
  resolver: DnsResolver,
  domain: string,
  caIdentities: readonly string[],
  opts: { wildcard?: boolean } = {},
): Promise<CaaProblem | undefined> {
  if (caIdentities.length === 0) return undefined;
  const top = registeredDomain(domain);
  const labels = domain.split('.');
  for (let i = 0; i < labels.length; i++) {
    const name = labels.slice(i).join('.');
    const records = await resolver.resolveCaa(name).catch(() => []);
    if (records.length > 0) {
      const wild = opts.wildcard ? records.filter((r) => r.issuewild !== undefined) : [];
      const tags = (wild.length ? wild.map((r) => r.issuewild) : records.map((r) => r.issue)).filter(
        (v): v is string => v !== undefined,
      );
      if (tags.length === 0) return undefined;
      const allows = tags.map((t) => t.split(';')[0]?.trim() ?? '');
      if (allows.some((a) => caIdentities.includes(a))) return undefined;
      const tag = wild.length ? 'issuewild' : 'issue';
      return { name, allows, add: { type: 'CAA', name, value: `0 ${tag} "${caIdentities[0]}"` } };
    }
    if (name === top) break;
  }
  return undefined;
}

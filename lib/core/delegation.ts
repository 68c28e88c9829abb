import { createHash } from 'node:crypto';

/**
 * Delegated DNS-01: the tenant points `_acme-challenge.<domain>` (CNAME) at a name in the
 * platform's challenge zone, and the issuer answers there, so a certificate issues before the
 * domain points at the edge, and for `*.<domain>`. The name is derived from the domain alone, so
 * the control plane (which shows it) and every issuer (which writes it) agree without storing it.
 */
export function delegationTarget(domain: string, challengeZone: string): string {
  const base = domain.replace(/^\*\./, '').toLowerCase();
  const digest = createHash('sha256').update(base).digest('hex').slice(0, 32);
  return `${digest}.${challengeZone}`;
}

/** The name the tenant delegates: `_acme-challenge.<domain>` (a wildcard validates at its base). */
export function delegatedName(domain: string): string {
  return `_acme-challenge.${domain.replace(/^\*\./, '')}`;
}

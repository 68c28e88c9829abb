import { randomBytes } from 'node:crypto';
import type { DnsResolver } from './dns/resolver.ts';

/** The TXT name a tenant proves control with. */
export const VERIFY_LABEL = '_edge-verify';
/** The path the tenant's current host serves the token at (the HTTP proof). */
export const VERIFY_PATH = '/.well-known/edge-verify.txt';

export function verifyName(domain: string): string {
  return `${VERIFY_LABEL}.${domain}`;
}

/** A token bound to this domain's registration: random, stored with the domain, shown to its tenant. */
export function newVerifyToken(): string {
  return `edge-verify=${randomBytes(18).toString('base64url')}`;
}

/** Fetches the HTTP proof: the body at `url`, or undefined when it is not a plain 200. */
export type TokenFetcher = (url: string) => Promise<string | undefined>;

export const fetchToken: TokenFetcher = async (url) => {
  try {
    // No redirects: the token must be served by the domain's own current host.
    const res = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(5000) });
    if (res.status !== 200) return undefined;
    return (await res.text()).slice(0, 1024);
  } catch {
    return undefined;
  }
};

export type Proof = { readonly proved: true; readonly via: 'txt' | 'http' } | { readonly proved: false };

/** Does the domain's owner show the token (TXT first, then the HTTP token over http and https)? */
export async function proveOwnership(
  resolver: DnsResolver,
  fetcher: TokenFetcher,
  domain: string,
  token: string,
): Promise<Proof> {
  const txt = await resolver.resolveTxt(verifyName(domain)).catch(() => [] as string[][]);
  if (txt.some((chunks) => chunks.join('') === token)) return { proved: true, via: 'txt' };
  for (const scheme of ['http', 'https']) {
    const body = await fetcher(`${scheme}://${domain}${VERIFY_PATH}`);
    if (body?.trim() === token) return { proved: true, via: 'http' };
  }
  return { proved: false };
}

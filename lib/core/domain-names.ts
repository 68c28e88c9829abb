import { parse } from 'tldts';

/**
 * Names against the public suffix list (tldts bundles it), private section included: Let's Encrypt
 * counts its limits per registered domain that way, and `github.io` or `s3.amazonaws.com` are as
 * much a suffix nobody may claim as `co.uk`.
 */
const PSL = { allowPrivateDomains: true } as const;

/**
 * The registered domain (eTLD+1) a name counts against, e.g. `example.co.uk` for
 * `www.shop.example.co.uk`; a leading `*.` is ignored. A public suffix is its own registered domain.
 */
export function registeredDomain(name: string): string {
  const host = name.replace(/^\*\./, '');
  return parse(host, PSL).domain ?? host;
}

/** The public suffix a name is, when it is one (`co.uk`, `github.io`); otherwise undefined. */
export function publicSuffixOf(name: string): string | undefined {
  const host = name.replace(/^\*\./, '');
  const out = parse(host, PSL);
  return out.domain === null && out.publicSuffix === host ? host : undefined;
}

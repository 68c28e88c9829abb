import type { z } from 'zod';
import { publicSuffixOf } from '../core/domain-names.ts';
import { cachePurgeSchema } from '../core/events/schema.ts';
import {
  hostnameSchema,
  originSchema,
  type TenantHsts,
  tenantHstsSchema,
  tenantIdSchema,
} from '../core/redis-format.ts';
import type { Origin } from '../core/store/items.ts';
import { ValidationError } from './errors.ts';

/**
 * Every input is checked here, before anything is written, against the same schemas the events
 * use: a value the control plane accepts is one every receiver accepts.
 */

function parse<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  // For an object, name the field that is wrong and show its value, not the whole object.
  let shown = value;
  let name = what;
  for (const key of issue?.path ?? []) {
    shown = (shown as Record<PropertyKey, unknown> | undefined)?.[key];
    name = `${name} ${String(key)}`;
  }
  throw new ValidationError(`invalid ${name} ${JSON.stringify(shown) ?? '(missing)'}: ${issue?.message}`);
}

export function tenantId(value: string): string {
  return parse(tenantIdSchema, value, 'tenant id');
}

/**
 * A custom domain a tenant may claim: a host name that is not itself a public suffix (`co.uk`,
 * `github.io`): nobody owns those, and a certificate for one would cover strangers' sites. Or a
 * tenant wildcard `*.<domain>` (one leading `*` label) whose base obeys the same rule.
 */
export function customDomain(value: string): string {
  const name = domainName(value);
  const suffix = publicSuffixOf(name);
  if (suffix)
    throw new ValidationError(
      isWildcard(name)
        ? `invalid domain ${JSON.stringify(name)}: ${suffix} is a public suffix; a wildcard goes over a name registered under it`
        : `invalid domain ${JSON.stringify(name)}: it is a public suffix; add a name registered under it`,
    );
  return name;
}

/** `*.<domain>`: a tenant wildcard. */
export function isWildcard(name: string): boolean {
  return name.startsWith('*.');
}

/** The name a wildcard stands on (`shop.example` for `*.shop.example`); a host name itself. */
export function baseDomain(name: string): string {
  return isWildcard(name) ? name.slice(2) : name;
}

/** A registry entry's name: a host name or `*.<host name>`, stored lowercase without a final dot. */
export function domainName(value: string, what = 'domain'): string {
  const name = value.toLowerCase().replace(/\.$/, '');
  if (!name.startsWith('*')) return hostname(name, what);
  if (!isWildcard(name) || name.slice(2).includes('*'))
    throw new ValidationError(
      `invalid ${what} ${JSON.stringify(name)}: a wildcard is one leading "*." label over a domain, e.g. *.shop.example`,
    );
  return `*.${hostname(name.slice(2), what)}`;
}

/** Host names are case-insensitive and may be written fully qualified: stored lowercase, no dot. */
export function hostname(value: string, what = 'domain'): string {
  return parse(hostnameSchema, value.toLowerCase().replace(/\.$/, ''), what);
}

export function origin(value: unknown): Origin {
  const parsed = parse(originSchema, value, 'origin');
  if (parsed.type === 'http') return { type: 'http', url: parsed.url };
  return parsed.prefix
    ? { type: 's3-website', endpoint: parsed.endpoint, prefix: parsed.prefix }
    : { type: 's3-website', endpoint: parsed.endpoint };
}

/**
 * A tenant's HSTS as the edge record takes it: max-age 1 to 63072000 s, includeSubDomains and
 * preload default false; preload only with includeSubDomains and a max-age of a year or more.
 */
export function hsts(value: unknown): TenantHsts {
  const parsed = parse(tenantHstsSchema, value, 'hsts');
  return {
    maxAgeSeconds: parsed.maxAgeSeconds,
    includeSubDomains: parsed.includeSubDomains,
    preload: parsed.preload,
  };
}

export type PurgeTarget =
  | { readonly scope: 'tenant' }
  | { readonly scope: 'host'; readonly host: string }
  | { readonly scope: 'prefix'; readonly prefix: string }
  | { readonly scope: 'url'; readonly url: string };

export type PurgeRequest = PurgeTarget & { readonly tenant: string };

const DOT_SEGMENT = /(^|\/)\.\.?(\/|$)/;

/** A purge as the event carries it; the edge also refuses dot segments, so they are refused here. */
export function purgeRequest(tenant: string, target: PurgeTarget): PurgeRequest {
  const t = tenantId(tenant);
  let request: PurgeRequest;
  switch (target.scope) {
    case 'tenant':
      request = { tenant: t, scope: 'tenant' };
      break;
    case 'host':
      request = { tenant: t, scope: 'host', host: hostname(target.host, 'host') };
      break;
    case 'prefix':
      if (DOT_SEGMENT.test(target.prefix))
        throw new ValidationError(
          `invalid prefix ${JSON.stringify(target.prefix)}: contains a dot segment (. or ..)`,
        );
      request = { tenant: t, scope: 'prefix', prefix: target.prefix };
      break;
    case 'url': {
      const path = /^https?:\/\/[^/?#]+(\/[^?#]*)?/.exec(target.url)?.[1] ?? '';
      if (DOT_SEGMENT.test(path))
        throw new ValidationError(
          `invalid url ${JSON.stringify(target.url)}: its path contains a dot segment (. or ..)`,
        );
      request = { tenant: t, scope: 'url', url: target.url };
      break;
    }
  }
  // The event schema is the contract: check with a placeholder generation.
  const payload = cachePurgeSchema.shape.payload;
  parse(payload, { ...request, generation: 1 }, 'purge');
  return request;
}

/** The host a URL names, lowercase, without port. */
export function urlHost(url: string): string {
  const authority = /^https?:\/\/([^/?#]+)/.exec(url)?.[1] ?? '';
  return authority
    .replace(/^[^@]*@/, '')
    .replace(/:\d+$/, '')
    .toLowerCase()
    .replace(/\.$/, '');
}

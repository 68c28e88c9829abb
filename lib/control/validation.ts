import type { z } from 'zod';
import { cachePurgeSchema } from '../core/events/schema.ts';
import { hostnameSchema, originSchema, tenantIdSchema } from '../core/redis-format.ts';
import type { Origin } from '../core/store/items.ts';
import { ValidationError } from './errors.ts';

/**
 * Every input is checked here, before anything is written, against the same schemas the events
 * use: a value the control plane accepts is one every receiver accepts.
 */

function parse<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const why = result.error.issues
    .map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message))
    .join('; ');
  throw new ValidationError(`invalid ${what} ${JSON.stringify(value)}: ${why}`);
}

export function tenantId(value: string): string {
  return parse(tenantIdSchema, value, 'tenant id');
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
  const result = cachePurgeSchema.shape.payload.safeParse({ ...request, generation: 1 });
  if (!result.success) {
    const issue = result.error.issues[0];
    const field = String(issue?.path[0] ?? target.scope);
    const value = (request as Record<string, unknown>)[field];
    throw new ValidationError(`invalid ${field} ${JSON.stringify(value)}: ${issue?.message}`);
  }
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

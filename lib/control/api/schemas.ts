import { z } from 'zod';
import { domainStatusSchema } from '../../core/domain-status.ts';
import {
  domainNameSchema,
  hostnameSchema,
  originSchema,
  tenantHstsSchema,
  tenantIdSchema,
} from '../../core/redis-format.ts';

/**
 * The HTTP API's JSON, built from the schemas the events use (what the API accepts, every
 * receiver accepts); the OpenAPI document is generated from these.
 */
const hsts = tenantHstsSchema.meta({
  id: 'Hsts',
  description:
    'Strict-Transport-Security on the tenant’s hosts (off when absent). preload needs includeSubDomains and maxAgeSeconds >= 31536000.',
});

export const tenantInput = z
  .object({ id: tenantIdSchema, origin: originSchema, hsts: hsts.optional() })
  .meta({
    id: 'TenantInput',
    description: 'The whole tenant: a PUT without hsts turns HSTS off.',
  });

export const domainInput = z.object({ domain: domainNameSchema, tenant: tenantIdSchema }).meta({
  id: 'DomainInput',
  description:
    'A custom domain for a tenant, or a tenant wildcard *.<domain> (issued by delegated DNS-01 only: the _acme-challenge CNAME is required); it starts pending_verification.',
});

export const purgeInput = z
  .discriminatedUnion('scope', [
    z.object({ tenant: tenantIdSchema, scope: z.literal('tenant') }),
    z.object({ tenant: tenantIdSchema, scope: z.literal('host'), host: hostnameSchema }),
    z.object({ tenant: tenantIdSchema, scope: z.literal('prefix'), prefix: z.string().startsWith('/') }),
    z.object({ tenant: tenantIdSchema, scope: z.literal('url'), url: z.string() }),
  ])
  .meta({ id: 'PurgeInput' });

export const dnsInstruction = z
  .object({
    purpose: z.enum(['ownership', 'routing', 'challenge', 'caa']),
    type: z.enum(['TXT', 'CNAME', 'A', 'AAAA', 'ALIAS', 'CAA']),
    name: z.string(),
    value: z.string(),
    satisfied: z.boolean(),
    note: z.string().optional(),
  })
  .meta({
    id: 'DnsInstruction',
    description: 'A DNS record the tenant creates, and whether it is in place.',
  });

export const domainEntry = z
  .object({
    domain: domainNameSchema,
    tenant: tenantIdSchema,
    version: z.number().int(),
    status: domainStatusSchema,
    reason: z.string().optional(),
    verifiedAt: z.number().int().optional().meta({ description: 'Unix ms of the ownership proof.' }),
  })
  .meta({ id: 'Domain' });

export const domainAdded = z
  .object({
    domain: domainEntry,
    created: z.boolean(),
    dns: z.unknown().meta({ description: 'How the domain reaches the edge now, or why not.' }),
    records: z.array(dnsInstruction),
  })
  .meta({ id: 'DomainAdded' });

export const domainDetails = domainEntry
  .extend({
    certificate: z.object({ state: z.string() }).loose(),
    purges: z.object({ prefixes: z.number(), urls: z.number() }).loose(),
    records: z.array(dnsInstruction),
    caa: z
      .object({ name: z.string(), allows: z.array(z.string()) })
      .loose()
      .optional(),
  })
  .meta({ id: 'DomainDetails' });

export const tenantEntry = z
  .object({ id: tenantIdSchema, origin: originSchema, hsts: hsts.optional(), version: z.number().int() })
  .meta({ id: 'Tenant' });

export const apiError = z
  .object({
    error: z.object({
      kind: z.enum(['usage', 'not_found', 'conflict', 'publish', 'unauthorized', 'error']),
      message: z.string(),
    }),
  })
  .meta({ id: 'Error' });

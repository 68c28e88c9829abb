import { z } from 'zod';

/**
 * The Redis contract shared by the edge (Lua), the sidecars and lua-resty-auto-ssl.
 * Certificates and challenges use lua-resty-auto-ssl's keys and JSON byte for byte; the
 * project's own records use "@", which no host name can contain, so they never collide.
 */
export class RedisKeys {
  constructor(readonly prefix: string) {
    if (!/^[a-z0-9_-]+$/i.test(prefix)) throw new Error(`invalid Redis prefix: "${prefix}"`);
  }
  cert(domain: string): string {
    return `${this.prefix}:${domain}:latest`;
  }
  challenge(domain: string, token: string): string {
    return `${this.prefix}:${domain}:challenge:${token}`;
  }
  domain(domain: string): string {
    return `${this.prefix}:@domain:${domain}`;
  }
  tenant(tenantId: string): string {
    return `${this.prefix}:@tenant:${tenantId}`;
  }
  purge(tenantId: string): string {
    return `${this.prefix}:@purge:${tenantId}`;
  }
  /** The domain in a `<prefix>:<domain>:latest` key, or undefined for any other key. */
  domainOfCertKey(key: string): string | undefined {
    const head = `${this.prefix}:`;
    if (!key.startsWith(head) || !key.endsWith(':latest')) return undefined;
    const domain = key.slice(head.length, -':latest'.length);
    return domain.includes(':') || domain.startsWith('@') ? undefined : domain;
  }
}

/** lua-resty-auto-ssl's certificate record. */
export const certRecordSchema = z.object({
  fullchain_pem: z.string().includes('BEGIN CERTIFICATE'),
  privkey_pem: z.string().includes('PRIVATE KEY'),
  cert_pem: z.string().includes('BEGIN CERTIFICATE'),
  /** Unix seconds. */
  expiry: z.number().int().positive(),
});
export type CertRecord = z.infer<typeof certRecordSchema>;

export const tenantIdSchema = z
  .string()
  .regex(
    /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/,
    'tenant id: lowercase letters, digits and dashes, at most 63',
  );

export const hostnameSchema = z
  .string()
  .max(253)
  .regex(
    /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/,
    'a lowercase DNS name with at least two labels',
  );

/** A tenant wildcard, `*.<domain>`: one leading `*` label over a host name. */
export const wildcardNameSchema = z
  .string()
  .max(253)
  .regex(
    /^\*\.(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/,
    'a wildcard name: *. and a lowercase DNS name with at least two labels',
  );

/** A registry entry's name: a host name or a tenant wildcard (`*.shop.example`). */
export const domainNameSchema = z.union([hostnameSchema, wildcardNameSchema]);

export const originSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('s3-website'),
    /** e.g. my-bucket.s3-website.eu-west-1.amazonaws.com */
    endpoint: hostnameSchema,
    /** Key prefix of the tenant's site inside the bucket, e.g. "acme/". */
    prefix: z.string().max(512).default(''),
  }),
  z.object({
    type: z.literal('http'),
    url: z.string().regex(/^https?:\/\/[\w.:-]+(\/[^?#]*)?$/, 'http(s)://host[:port][/path]'),
  }),
]);

/** A tenant's cache settings; absent fields take the edge's (EdgeConfig `cache`). */
export const tenantCacheSchema = z.object({
  /** Freshness for responses with neither explicit freshness nor Last-Modified; Age counts. */
  defaultTtlSeconds: z.number().int().min(0).max(31536000).optional(),
  /** Cap on heuristic freshness; the edge's own cap applies when it is lower. */
  heuristicMaxSeconds: z.number().int().min(0).max(31536000).optional(),
});

/**
 * A tenant's HSTS (RFC 6797), sent on its subdomain and custom domains, never on the shared
 * platform host of the directory form. Absent: no Strict-Transport-Security header.
 */
export const tenantHstsSchema = z
  .object({
    maxAgeSeconds: z.number().int().min(1).max(63072000),
    includeSubDomains: z.boolean().default(false),
    /** Sent only with includeSubDomains and a max-age of a year or more (the preload list's rule). */
    preload: z.boolean().default(false),
  })
  .refine((h) => !h.preload || (h.includeSubDomains && h.maxAgeSeconds >= 31536000), {
    message: 'preload needs includeSubDomains and maxAgeSeconds >= 31536000',
  });

export type TenantHsts = z.output<typeof tenantHstsSchema>;

export const tenantRecordSchema = z.object({
  id: tenantIdSchema,
  hsts: tenantHstsSchema.optional(),
  origin: originSchema,
  cache: tenantCacheSchema.optional(),
  version: z.number().int().nonnegative().default(0),
});
export type TenantRecord = z.input<typeof tenantRecordSchema>;

export const domainRecordSchema = z.object({
  domain: domainNameSchema,
  tenant: tenantIdSchema,
  version: z.number().int().nonnegative().default(0),
});
export type DomainRecord = z.input<typeof domainRecordSchema>;

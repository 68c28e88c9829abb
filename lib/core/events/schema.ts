import { z } from 'zod';
import { domainStatusSchema } from '../domain-status.ts';
import {
  domainNameSchema,
  hostnameSchema,
  originSchema,
  tenantHstsSchema,
  tenantIdSchema,
} from '../redis-format.ts';

/**
 * Control events: JSON, one envelope for every type. `version` orders the events of one entity
 * (a tenant, a domain, a domain's certificate): the receiver keeps the newest and ignores the rest,
 * so at-least-once delivery in any order converges. Private keys never travel in an event.
 *
 * Readers are tolerant: a field they do not know (added by a newer region deployed first) is
 * dropped, not refused, so regions deployed one after another keep applying each other's events.
 * The known fields and the envelope are still validated; writers stay strict (codec.ts).
 */

/** A per-entity version: any monotonic integer (a counter, or milliseconds since the epoch). */
const version = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

const envelope = {
  /** Unique per event; duplicates of one delivery share it. */
  id: z.string().min(1).max(128),
  version,
  /** When the publisher created the event (RFC 3339). */
  time: z.iso.datetime({ offset: true }),
};

export const domainUpsertedSchema = z.object({
  ...envelope,
  type: z.literal('domain.upserted'),
  payload: z.object({ domain: domainNameSchema, tenant: tenantIdSchema }),
});

export const domainRemovedSchema = z.object({
  ...envelope,
  type: z.literal('domain.removed'),
  payload: z.object({ domain: domainNameSchema }),
});

/**
 * A domain's onboarding status changed (pending_verification, verified, issuing, active, failed,
 * expiring, moved_away): for backends to follow. Every change moves the domain's version (one
 * sequence with domain.upserted/removed), so the edge applies it too: any status but
 * pending_verification writes the domain's record at this version (a pending one is not served).
 * A domain is also upserted once it is verified, with the version of that status change.
 */
export const domainStatusEventSchema = z.object({
  ...envelope,
  type: z.literal('domain.status'),
  payload: z.object({
    domain: domainNameSchema,
    tenant: tenantIdSchema,
    status: domainStatusSchema,
    /** The status before this change; absent for a new domain. */
    previous: domainStatusSchema.optional(),
    /** Why it failed or moved away, or what is still missing. */
    reason: z.string().max(1024).optional(),
  }),
});

export const tenantUpsertedSchema = z.object({
  ...envelope,
  type: z.literal('tenant.upserted'),
  payload: z.object({
    id: tenantIdSchema,
    origin: originSchema,
    /**
     * Strict-Transport-Security for the tenant's hosts; absent: none (off by default). A region
     * deployed before this field drops it and sends no header until it is upgraded.
     */
    hsts: tenantHstsSchema.optional(),
  }),
});

export const tenantRemovedSchema = z.object({
  ...envelope,
  type: z.literal('tenant.removed'),
  payload: z.object({ id: tenantIdSchema }),
});

/**
 * A certificate is in the store: receivers read it there. The version is the certificate's
 * expiry (Unix seconds), so a renewal is always newer than what it replaces.
 */
export const certIssuedSchema = z.object({
  ...envelope,
  type: z.literal('cert.issued'),
  payload: z.object({ domain: domainNameSchema }),
});

/** The certificate with this version (expiry) or older must no longer be served. */
export const certRevokedSchema = z.object({
  ...envelope,
  type: z.literal('cert.revoked'),
  payload: z.object({
    domain: domainNameSchema,
    reason: z.string().max(256).optional(),
  }),
});

const purgePath = z
  .string()
  .startsWith('/')
  .max(2048)
  .regex(/^[^\s\p{Cc}]*$/u, 'no control characters or spaces');

/**
 * Drop cached copies. `generation` (milliseconds since the epoch, chosen by the publisher) makes a
 * replay change nothing; it is also the event's version.
 */
export const cachePurgeSchema = z.object({
  ...envelope,
  type: z.literal('cache.purge'),
  payload: z.discriminatedUnion('scope', [
    z.object({ scope: z.literal('tenant'), tenant: tenantIdSchema, generation: version.min(1) }),
    z.object({
      scope: z.literal('host'),
      tenant: tenantIdSchema,
      host: hostnameSchema,
      generation: version.min(1),
    }),
    z.object({
      scope: z.literal('prefix'),
      tenant: tenantIdSchema,
      prefix: purgePath,
      generation: version.min(1),
    }),
    z.object({
      scope: z.literal('url'),
      tenant: tenantIdSchema,
      url: z.string().regex(/^https?:\/\/[^/?#\s]+(\/[^#\s]*)?$/, 'an absolute http(s) URL'),
      generation: version.min(1),
    }),
  ]),
});

export const eventSchema = z.discriminatedUnion('type', [
  domainUpsertedSchema,
  domainRemovedSchema,
  domainStatusEventSchema,
  tenantUpsertedSchema,
  tenantRemovedSchema,
  certIssuedSchema,
  certRevokedSchema,
  cachePurgeSchema,
]);

export type EdgeEvent = z.infer<typeof eventSchema>;
export type EventType = EdgeEvent['type'];
export type EventOf<T extends EventType> = Extract<EdgeEvent, { type: T }>;
export const EVENT_TYPES = eventSchema.options.map((o) => o.shape.type.value) as EventType[];

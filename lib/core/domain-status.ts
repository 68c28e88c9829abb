import { z } from 'zod';

/**
 * Where a custom domain stands in onboarding. `pending_verification → verified → issuing → active`,
 * plus `failed` (with a reason), `expiring` (the certificate is near its end and not yet renewed)
 * and `moved_away` (DNS no longer points at the edge and the ownership proof is gone: marked and
 * alarmed, never suspended).
 */
export const DOMAIN_STATUSES = [
  'pending_verification',
  'verified',
  'issuing',
  'active',
  'failed',
  'expiring',
  'moved_away',
] as const;

export const domainStatusSchema = z.enum(DOMAIN_STATUSES);
export type DomainStatus = z.infer<typeof domainStatusSchema>;

/** The fields of a domain item that carry its onboarding state (all absent on a legacy item). */
export interface DomainState {
  readonly status?: DomainStatus;
  /** Why it failed or moved away. */
  readonly reason?: string;
  /** Unix ms of the first successful ownership proof; set once, kept across later states. */
  readonly verifiedAt?: number;
  /** The value `_edge-verify.<domain>` TXT (or the HTTP token) must hold. */
  readonly verifyToken?: string;
}

/** A record written before statuses existed reads as verified: nothing that serves today stops. */
export function statusOf(item: DomainState): DomainStatus {
  return item.status ?? 'verified';
}

/**
 * Whether the edge may serve and issue for the domain: its owner proved control once. Only such
 * domains reach the edge's records (events and bootstrap), so an unverified one is neither served
 * nor issued for; a later `failed` or `moved_away` keeps serving (no automatic suspension).
 */
export function isVerified(item: DomainState): boolean {
  return servedStatus(statusOf(item));
}

/**
 * Whether a domain in this status reaches the edge: every status but `pending_verification` (any
 * later one follows a proof of ownership, `verifiedAt`, or is a record from before statuses). A
 * `domain.status` event carries only the status, so the sqs-listener applies it by this rule and
 * the bootstrap (isVerified) by the same one: events and bootstrap write the same record.
 */
export function servedStatus(status: DomainStatus): boolean {
  return status !== 'pending_verification';
}

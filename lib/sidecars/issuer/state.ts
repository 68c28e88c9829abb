import type { CertRecord } from '../../core/redis-format.ts';
import type { IssuanceRecord } from '../../core/store/issuance.ts';

/**
 * A domain's certificate state as the control plane shows it. The certificate (Redis, or the
 * table's copy) says issued/expiring/expired; the issuance record says pending/failed.
 */
export type CertificateState = 'none' | 'pending' | 'issued' | 'failed' | 'expiring' | 'expired';

export interface CertificateStatus {
  readonly domain: string;
  readonly state: CertificateState;
  /** Why the last attempt failed; also set on issued/expiring when a renewal attempt failed. */
  readonly reason?: string;
  /** Unix seconds. */
  readonly expiry?: number;
  /** Unix ms: no attempt before this (backoff, rate limit, budget). */
  readonly nextAttemptAt?: number;
  readonly updatedAt?: number;
}

export interface CertificateStateSources {
  readonly certs: { get(domain: string): Promise<CertRecord | undefined> };
  readonly issuance: { get(domain: string): Promise<IssuanceRecord | undefined> };
}

export async function readCertificateState(
  sources: CertificateStateSources,
  domain: string,
  opts: { renewBeforeDays?: number; now?: number } = {},
): Promise<CertificateStatus> {
  const now = opts.now ?? Date.now();
  const [cert, issuance] = await Promise.all([sources.certs.get(domain), sources.issuance.get(domain)]);
  const failure =
    issuance?.status === 'failed' ? { reason: issuance.reason, nextAttemptAt: issuance.nextAttemptAt } : {};
  const expiry = cert?.expiry ?? (issuance?.status === 'issued' ? issuance.expiry : undefined);
  if (expiry !== undefined) {
    const state: CertificateState =
      expiry * 1000 <= now
        ? 'expired'
        : expiry * 1000 - (opts.renewBeforeDays ?? 30) * 86_400_000 <= now
          ? 'expiring'
          : 'issued';
    return { domain, state, expiry, updatedAt: issuance?.updatedAt, ...failure };
  }
  if (!issuance) return { domain, state: 'none' };
  return {
    domain,
    state: issuance.status === 'failed' ? 'failed' : 'pending',
    updatedAt: issuance.updatedAt,
    ...failure,
  };
}

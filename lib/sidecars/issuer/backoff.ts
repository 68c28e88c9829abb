/**
 * Per-domain exponential backoff after failed attempts: base, 2×base, 4×base… capped at max,
 * with up to 10 % jitter so a fleet's retries do not line up.
 */
export interface BackoffPolicy {
  readonly baseSeconds: number;
  readonly maxSeconds: number;
}

/** Delay in ms after the `failures`-th consecutive failure (1 = the first). */
export function backoffDelayMs(policy: BackoffPolicy, failures: number, random = Math.random): number {
  const exp = Math.min(policy.maxSeconds, policy.baseSeconds * 2 ** Math.max(0, failures - 1));
  return Math.round(exp * 1000 * (1 + 0.1 * random()));
}

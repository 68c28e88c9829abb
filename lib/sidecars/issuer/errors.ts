/** Errors the issuer tells apart: each decides what happens next (backoff, next CA, wait). */

/** The CA answered 429: nothing more goes to it before `retryAt`. */
export class RateLimitedError extends Error {
  override name = 'RateLimitedError';
  constructor(
    readonly ca: string,
    /** Unix milliseconds. */
    readonly retryAt: number,
    detail: string,
  ) {
    super(`rate limited by ${ca} until ${new Date(retryAt).toISOString()}: ${detail}`);
  }
}

/** An authorization failed: the domain does not validate (DNS, HTTP-01 or DNS-01 answer wrong). */
export class ValidationError extends Error {
  override name = 'ValidationError';
  constructor(
    readonly identifier: string,
    detail: string,
  ) {
    super(`validation of ${identifier} failed: ${detail}`);
  }
}

/** The fleet-wide issuance budget has no room for this order. */
export class BudgetExceededError extends Error {
  override name = 'BudgetExceededError';
  constructor(
    readonly limit: string,
    /** Unix milliseconds: when the window has room again (at the earliest). */
    readonly retryAt: number,
  ) {
    super(`issuance budget "${limit}" exhausted until ${new Date(retryAt).toISOString()}`);
  }
}

/** The CA could not be reached or answered unexpectedly: try the next one. */
export class CaUnavailableError extends Error {
  override name = 'CaUnavailableError';
  constructor(
    readonly ca: string,
    detail: string,
  ) {
    super(`CA ${ca} unavailable: ${detail}`);
  }
}

export class IssuerConfigError extends Error {
  override name = 'IssuerConfigError';
}

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { hostnameSchema } from '../../core/redis-format.ts';
import { type ExtraRoutes, send } from '../runtime/health.ts';
import { type HeadroomReport, headroomMetrics } from './headroom.ts';
import type { Issuer } from './issuer.ts';
import type { ExpiryReport } from './renewal.ts';
import type { CertificateStatus } from './state.ts';

/**
 * The issuer's HTTP API, bound to loopback: the edge in the same task is its only client. It is
 * mounted on the sidecar runtime's health server, which answers /healthz and /readyz.
 *
 *   POST /v1/certificates/<domain>  ask for a certificate: 202 while the order runs on,
 *        [?wait_ms=<n>]             409 when refused (registry, backoff, budget) or failed, 200 when
 *                                   present; with wait_ms the answer waits up to n ms for the order
 *                                   to settle, so a handshake learns a failure the moment it happens
 *   GET  /v1/certificates/<domain>  the domain's certificate state
 *   GET  /v1/account                the account's JWK thumbprint (for acme.accountThumbprint)
 *   GET  /metrics                   Prometheus text; `edge_issuer_orders_total` counts orders
 *   GET  /healthz, /readyz
 */
export interface ApiDeps {
  readonly issuer: Issuer;
  readonly state: (domain: string) => Promise<CertificateStatus>;
  readonly thumbprint: string;
  readonly log: Logger;
  readonly ready: () => boolean;
  /** The renewal scheduler's last pass: certificates close to expiry, expired, renewal failures. */
  readonly expiry?: ExpiryReport;
  /** The issuance budget's headroom at the last renewal pass. */
  readonly headroom?: HeadroomReport;
}

/** How long POST waits for a quick refusal before answering 202, unless the caller asks for longer. */
const EARLY_ANSWER_MS = 100;
/** The longest `wait_ms` honoured: a handshake never waits longer than this anyway. */
const MAX_WAIT_MS = 30_000;

/** `?wait_ms=<n>`: how long the caller waits for the outcome; EARLY_ANSWER_MS when absent or malformed. */
function answerWithinMs(url: URL): number {
  const raw = url.searchParams.get('wait_ms');
  const n = raw !== null && /^\d{1,6}$/.test(raw) ? Number(raw) : Number.NaN;
  return Number.isFinite(n) ? Math.min(Math.max(n, EARLY_ANSWER_MS), MAX_WAIT_MS) : EARLY_ANSWER_MS;
}

function metrics(deps: ApiDeps): string {
  const { issuer } = deps;
  const lines = [
    '# HELP edge_issuer_orders_total ACME orders placed since start.',
    '# TYPE edge_issuer_orders_total counter',
    `edge_issuer_orders_total ${issuer.orders}`,
    '# HELP edge_issuer_requests_total Issuance requests by outcome since start.',
    '# TYPE edge_issuer_requests_total counter',
    ...Object.entries(issuer.stats).map(([k, v]) => `edge_issuer_requests_total{outcome="${k}"} ${v}`),
    '# HELP edge_issuer_in_flight Orders running now.',
    '# TYPE edge_issuer_in_flight gauge',
    `edge_issuer_in_flight ${issuer.inFlight}`,
    ...expiryMetrics(deps.expiry),
    ...headroomMetrics(deps.headroom),
  ];
  return `${lines.join('\n')}\n`;
}

function expiryMetrics(e: ExpiryReport | undefined): string[] {
  if (!e) return [];
  return [
    "# HELP edge_issuer_certificates Certificates in this task's Redis at the last renewal pass.",
    '# TYPE edge_issuer_certificates gauge',
    `edge_issuer_certificates ${e.certificates}`,
    '# HELP edge_issuer_certificates_expiring Certificates within the alert window of expiry with no renewal in progress.',
    '# TYPE edge_issuer_certificates_expiring gauge',
    `edge_issuer_certificates_expiring{within_days="${e.alertBeforeDays}"} ${e.expiring}`,
    '# HELP edge_issuer_certificates_expired Expired certificates still in Redis (still served).',
    '# TYPE edge_issuer_certificates_expired gauge',
    `edge_issuer_certificates_expired ${e.expired}`,
    '# TYPE edge_issuer_renewals_total counter',
    `edge_issuer_renewals_total{outcome="issued"} ${e.renewed}`,
    `edge_issuer_renewals_total{outcome="failed"} ${e.renewalFailures}`,
    '# HELP edge_issuer_renewal_attempts_total Renewal orders tried (issued or failed).',
    '# TYPE edge_issuer_renewal_attempts_total counter',
    `edge_issuer_renewal_attempts_total ${e.renewalAttempts}`,
    '# HELP edge_issuer_renewal_failure_ratio Failed / tried renewals over the window (0 with none tried).',
    '# TYPE edge_issuer_renewal_failure_ratio gauge',
    `edge_issuer_renewal_failure_ratio{window_seconds="${e.failureRate.windowSeconds}"} ${e.failureRate.ratio}`,
    '# HELP edge_issuer_renewal_last_pass_seconds When the last renewal pass ended (Unix seconds).',
    '# TYPE edge_issuer_renewal_last_pass_seconds gauge',
    `edge_issuer_renewal_last_pass_seconds ${Math.floor(e.lastPassAt / 1000)}`,
  ];
}

/** The domain named in a path segment, or undefined for a malformed percent-escape (a 400, not a 500). */
function decodeDomain(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment).toLowerCase().replace(/\.$/, '');
  } catch {
    return undefined;
  }
}

async function handle(deps: ApiDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://issuer');
  const path = url.pathname;
  if (req.method === 'GET' && path === '/metrics')
    return send(res, 200, metrics(deps), 'text/plain; version=0.0.4');
  if (req.method === 'GET' && path === '/v1/account') return send(res, 200, { thumbprint: deps.thumbprint });

  const m = /^\/v1\/certificates\/([^/]+)$/.exec(path);
  if (!m?.[1]) return send(res, 404, { error: 'not found' });
  const domain = decodeDomain(m[1]);
  if (domain === undefined) return send(res, 400, { error: 'malformed percent-escape in path' });
  const wildcard = domain === deps.issuer.wildcardName;
  // A tenant's `*.<domain>` (delegated DNS-01) is named like its domain.
  const name = !wildcard && domain.startsWith('*.') ? domain.slice(2) : domain;
  if (!wildcard && !hostnameSchema.safeParse(name).success)
    return send(res, 400, { error: 'invalid domain' });

  if (req.method === 'GET') return send(res, 200, await deps.state(domain));
  if (req.method === 'POST') {
    if (!deps.ready()) return send(res, 503, { error: 'stopping' });
    // Refusals and failures are answered 409 as soon as they are known (within the caller's
    // wait_ms) so the handshake stops waiting; 202 when the order runs on past it (or another
    // task holds the lease), and the handshake polls Redis.
    const flight = deps.issuer.request(domain);
    flight.catch((err) => deps.log.error({ domain, err }, 'request failed'));
    let timer: NodeJS.Timeout | undefined;
    const early = await Promise.race([
      flight,
      new Promise<undefined>((r) => {
        timer = setTimeout(() => r(undefined), answerWithinMs(url));
      }),
    ]).finally(() => clearTimeout(timer));
    if (early?.status === 'refused' || early?.status === 'failed') return send(res, 409, early);
    if (early?.status === 'present' || early?.status === 'issued') return send(res, 200, early);
    return send(res, 202, { status: 'accepted' });
  }
  return send(res, 405, { error: 'method not allowed' });
}

/** The API's routes, for the health server; a path it does not know falls through to its 404. */
export function apiRoutes(deps: ApiDeps): ExtraRoutes {
  return async (req, res) => {
    const path = new URL(req.url ?? '/', 'http://issuer').pathname;
    if (path !== '/metrics' && path !== '/v1/account' && !path.startsWith('/v1/certificates/')) return false;
    await handle(deps, req, res);
    return true;
  };
}

import type { Logger } from 'pino';
import { registeredDomain } from '../../core/domain-names.ts';
import { type Budget, letsEncryptLimits } from './budget.ts';
import type { BudgetConfig } from './config.ts';

/** One CA's Let's Encrypt budget headroom, as the last renewal pass saw it. */
export interface CaHeadroom {
  readonly ca: string;
  /** New orders left for this account in the 3-hour window. */
  readonly ordersLeft: number;
  readonly ordersLimit: number;
  /** Certificates left this week, per registered domain of a certificate in Redis. */
  readonly certsPerDomainLeft: Readonly<Record<string, number>>;
  readonly certsPerDomainLimit: number;
  /** The lowest of certsPerDomainLeft (the limit when there is no domain yet). */
  readonly lowestCertsPerDomainLeft: number;
  readonly lowestDomain?: string;
}

export interface HeadroomReport {
  cas: CaHeadroom[];
  /** Below this share of a limit left, a `budget_low` line is logged (percent). */
  readonly lowPercent: number;
  /** Limits (per CA and subject) below lowPercent at the last check. */
  low: number;
  /** When the last check ended (Unix ms); 0 before the first. */
  checkedAt: number;
}

/**
 * Reads the fleet-wide issuance budget (the table's windows, as Budget.reserve counts them) for
 * every CA that keeps one, and reports what is left: on the issuer's /metrics and, below
 * `lowPercent` of a limit, as a `budget_low` log line the CloudWatch alarm counts.
 */
export class BudgetHeadroom {
  readonly report: HeadroomReport;
  private readonly limits: ReturnType<typeof letsEncryptLimits>;

  constructor(
    private readonly deps: {
      readonly budget: Pick<Budget, 'count'>;
      readonly config: BudgetConfig;
      /** CAs whose issuance is counted against the budget (config `budget: true`). */
      readonly cas: readonly string[];
      readonly log: Logger;
    },
  ) {
    this.limits = letsEncryptLimits(deps.config);
    this.report = { cas: [], lowPercent: deps.config.lowHeadroomPercent, low: 0, checkedAt: 0 };
  }

  /** Checks the budget for these certificate names (their registered domains); logs what is low. */
  async check(domains: readonly string[], now = Date.now()): Promise<HeadroomReport> {
    const registered = [...new Set(domains.map((d) => registeredDomain(d)).filter(Boolean))].sort();
    const { orders, certsPerDomain } = this.limits;
    const lowAt = (limit: number) => (limit * this.deps.config.lowHeadroomPercent) / 100;
    const cas: CaHeadroom[] = [];
    let low = 0;
    const warn = (ca: string, limit: string, subject: string, left: number, of: number) => {
      low += 1;
      this.deps.log.warn(
        {
          event: 'budget_low',
          ca,
          limit,
          subject,
          left,
          of,
          lowPercent: this.deps.config.lowHeadroomPercent,
        },
        "Let's Encrypt budget headroom low",
      );
    };
    for (const ca of this.deps.cas) {
      const ordersLeft = Math.max(0, orders.limit - (await this.deps.budget.count(orders, ca, now)));
      if (ordersLeft <= lowAt(orders.limit)) warn(ca, orders.name, ca, ordersLeft, orders.limit);
      const perDomain: Record<string, number> = {};
      let lowest = certsPerDomain.limit;
      let lowestDomain: string | undefined;
      for (const rd of registered) {
        const used = await this.deps.budget.count(certsPerDomain, `${ca}:${rd}`, now);
        const left = Math.max(0, certsPerDomain.limit - used);
        perDomain[rd] = left;
        if (lowestDomain === undefined || left < lowest) {
          lowest = left;
          lowestDomain = rd;
        }
        if (left <= lowAt(certsPerDomain.limit))
          warn(ca, certsPerDomain.name, rd, left, certsPerDomain.limit);
      }
      cas.push({
        ca,
        ordersLeft,
        ordersLimit: orders.limit,
        certsPerDomainLeft: perDomain,
        certsPerDomainLimit: certsPerDomain.limit,
        lowestCertsPerDomainLeft: lowest,
        ...(lowestDomain ? { lowestDomain } : {}),
      });
    }
    Object.assign(this.report, { cas, low, checkedAt: Date.now() });
    return this.report;
  }
}

const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"');

/** The report as Prometheus text lines (for the issuer's /metrics). */
export function headroomMetrics(r: HeadroomReport | undefined): string[] {
  if (!r) return [];
  const out = [
    "# HELP edge_issuer_budget_orders_left New orders left for the CA account in Let's Encrypt's 3-hour window.",
    '# TYPE edge_issuer_budget_orders_left gauge',
    ...r.cas.map(
      (c) => `edge_issuer_budget_orders_left{ca="${esc(c.ca)}",limit="${c.ordersLimit}"} ${c.ordersLeft}`,
    ),
    // Per domain only where headroom is low: one series per customer domain would not scale.
    '# HELP edge_issuer_budget_certs_per_domain_left Certificates left this week for registered domains at or below the low-headroom share.',
    '# TYPE edge_issuer_budget_certs_per_domain_left gauge',
    ...r.cas.flatMap((c) =>
      Object.entries(c.certsPerDomainLeft)
        .filter(([, n]) => n <= (c.certsPerDomainLimit * r.lowPercent) / 100)
        .map(
          ([d, n]) =>
            `edge_issuer_budget_certs_per_domain_left{ca="${esc(c.ca)}",domain="${esc(d)}",limit="${c.certsPerDomainLimit}"} ${n}`,
        ),
    ),
    '# HELP edge_issuer_budget_certs_per_domain_left_min The lowest certificates-per-domain headroom across registered domains.',
    '# TYPE edge_issuer_budget_certs_per_domain_left_min gauge',
    ...r.cas.map(
      (c) =>
        `edge_issuer_budget_certs_per_domain_left_min{ca="${esc(c.ca)}",limit="${c.certsPerDomainLimit}"} ${c.lowestCertsPerDomainLeft}`,
    ),
    `# HELP edge_issuer_budget_low Budget limits at or below ${r.lowPercent}% headroom at the last check.`,
    '# TYPE edge_issuer_budget_low gauge',
    `edge_issuer_budget_low ${r.low}`,
  ];
  return out;
}

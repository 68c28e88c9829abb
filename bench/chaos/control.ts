import { setTimeout as sleep } from 'node:timers/promises';
import type { ControlPlane } from '../../lib/control/control-plane.ts';
import { PublishError } from '../../lib/control/errors.ts';
import type { PurgeTarget } from '../../lib/control/validation.ts';

/** Issues a certificate for a domain as a region would (its issuer, or a stand-in writing Redis). */
export type Issue = (domain: string) => Promise<void>;

export interface ChurnCounts {
  ops: Record<string, number>;
  /** Operations that failed for good (after the retries an operator would make), by op and error. */
  failed: Record<string, number>;
  /** Publishes that failed and were repeated, as the CLI tells the operator to. */
  publishRetries: number;
  /** Certificates issued for new domains. */
  issued: number;
}

/**
 * Control-plane changes through lib/control while the run goes on: tenants added, changed and
 * removed, custom domains added (operator-verified, so they need a certificate at once) and
 * removed, purges of every scope. The stable tenants the load uses are changed and purged, never
 * removed.
 */
export class Churn {
  readonly counts: ChurnCounts = { ops: {}, failed: {}, publishRetries: 0, issued: 0 };
  private readonly tenants = new Set<string>();
  private readonly domains = new Map<string, string>();
  private seq = 0;

  constructor(
    private readonly cp: ControlPlane,
    private readonly originUrl: string,
    private readonly stable: readonly string[],
    private readonly issue: Issue,
    private readonly random: () => number,
  ) {}

  /** One random operation. */
  async step(): Promise<void> {
    const dice = this.random();
    const all = [...this.stable, ...this.tenants];
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(this.random() * xs.length)];
    if (dice < 0.15 || this.tenants.size === 0) {
      // A new tenant, or a changed origin for any tenant (a new version).
      const id = this.random() < 0.5 || this.tenants.size === 0 ? `c${++this.seq}` : (pick(all) as string);
      await this.op('tenant add', () =>
        this.cp.tenants.add(id, { type: 'http', url: `${this.originUrl}/v${++this.seq}` }),
      );
      if (!this.stable.includes(id)) this.tenants.add(id);
    } else if (dice < 0.22) {
      const id = pick([...this.tenants]) as string;
      await this.op('tenant remove', () => this.cp.tenants.remove(id));
      this.tenants.delete(id);
      for (const [d, t] of this.domains) if (t === id) this.domains.delete(d);
    } else if (dice < 0.45) {
      const tenant = pick(all) as string;
      const domain = `n${++this.seq}.${tenant}.chaos.test`;
      const added = await this.op('domain add', () =>
        this.cp.domains.add(domain, tenant, { skipDnsCheck: true, preverified: true }),
      );
      if (added) {
        this.domains.set(domain, tenant);
        await this.op('certificate', () => this.issue(domain));
        this.counts.issued += 1;
      }
    } else if (dice < 0.55 && this.domains.size > 0) {
      const domain = pick([...this.domains.keys()]) as string;
      await this.op('domain remove', () => this.cp.domains.remove(domain));
      this.domains.delete(domain);
    } else {
      const tenant = pick(all) as string;
      const n = Math.floor(this.random() * 20);
      const targets: PurgeTarget[] = [
        { scope: 'tenant' },
        { scope: 'host', host: `${tenant}.platform.test` },
        { scope: 'prefix', prefix: `/p${n}` },
        { scope: 'url', url: `https://${tenant}.platform.test/p${n}.txt` },
      ];
      const target = pick(targets) as PurgeTarget;
      await this.op(`purge ${target.scope}`, () => this.cp.purge(tenant, target));
    }
  }

  /** Runs an operation; a failed publish is repeated (table first, then publish: repeating fixes it). */
  private async op<T>(name: string, fn: () => Promise<T>): Promise<T | undefined> {
    this.counts.ops[name] = (this.counts.ops[name] ?? 0) + 1;
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (err instanceof PublishError && attempt < 30) {
          this.counts.publishRetries += 1;
          await sleep(500);
          continue;
        }
        const key = `${name}: ${(err as Error).name}`;
        this.counts.failed[key] = (this.counts.failed[key] ?? 0) + 1;
        return undefined;
      }
    }
  }
}

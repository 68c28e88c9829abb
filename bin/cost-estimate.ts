/**
 * Monthly cost estimate of a deployment from AWS list prices (us-east-1, on-demand, USD, 730 h).
 * Prices differ a little per region and change over time: this is for comparing options (NAT or
 * not, task sizes, region count), not for budgeting to the cent. Data transfer out to the
 * internet depends on traffic and is priced separately at the end.
 *
 *   npx tsx bin/cost-estimate.ts [config.json] [--log-gb-per-region N] [--egress-tb N]
 */
import { readFileSync } from 'node:fs';
import { type DeploymentConfig, parseDeploymentConfig, taskBounds } from '../lib/config/deployment-config.ts';

const HOURS = 730;

/** List prices, USD. */
export const PRICES = {
  fargateVcpuHour: 0.04048,
  fargateGbHour: 0.004445,
  /** Ephemeral storage above the 20 GiB included. */
  fargateStorageGbHour: 0.000111,
  nlbHour: 0.0225,
  nlbLcuHour: 0.006,
  natHour: 0.045,
  natGb: 0.045,
  publicIpv4Hour: 0.005,
  route53HostedZoneMonth: 0.5,
  route53HealthCheckMonth: 0.5,
  secretMonth: 0.4,
  kmsKeyMonth: 1,
  alarmMonth: 0.1,
  dashboardMonth: 3,
  logsIngestGb: 0.5,
  dynamoStorageGbMonth: 0.25,
  dynamoPitrGbMonth: 0.2,
  /** Container Insights (standard) for one small cluster: its custom metrics, roughly. */
  containerInsightsClusterMonth: 6,
  egressFirst10TbGb: 0.09,
} as const;

export interface CostOptions {
  /** NAT gateways per region (0 = tasks in public subnets). */
  readonly natGatewaysPerRegion: number;
  /** Logs ingested per region per month (access logs, flow logs), GB. */
  readonly logGbPerRegion: number;
  /** NLB load balancer capacity units in use on average. */
  readonly nlbLcus: number;
  /** Bytes through each NAT gateway per month (image pulls, ACME, AWS APIs), GB. */
  readonly natGbPerGateway: number;
  /** State table size per replica, GB. */
  readonly tableGb: number;
}

export interface CostLine {
  readonly item: string;
  readonly monthlyUsd: number;
}

/** Line items for the whole deployment, minimum task counts. */
export function estimate(c: DeploymentConfig, o: CostOptions): CostLine[] {
  const vcpu = c.task.cpu / 1024;
  const gb = c.task.memoryMiB / 1024;
  const extraStorage = Math.max(0, c.task.ephemeralStorageGiB - 20);
  const perTask =
    HOURS *
    (vcpu * PRICES.fargateVcpuHour + gb * PRICES.fargateGbHour + extraStorage * PRICES.fargateStorageGbHour);
  const regions = c.regions.length;
  const tasks = c.regions.reduce((n, r) => n + taskBounds(c, r).min, 0);
  const azs = c.regions.reduce((n, r) => n + r.availabilityZones.length, 0);
  const nat = o.natGatewaysPerRegion * regions;
  // Public IPv4: one per NLB subnet, one per NAT gateway, and one per task when there is no NAT.
  const publicIps = azs + nat + (o.natGatewaysPerRegion === 0 ? tasks : 0);
  const alarmsPerRegion = 6; // 4 alarms + the 2 step-scaling alarms
  const secrets = 1 + (regions - 1) + regions; // ACME key + its replicas + one control token per region
  const lines: CostLine[] = [
    {
      item: `Fargate: ${tasks} tasks × (${vcpu} vCPU, ${gb} GB, ${c.task.ephemeralStorageGiB} GB disk)`,
      monthlyUsd: tasks * perTask,
    },
    {
      item: `NLB: ${regions} × (hour + ${o.nlbLcus} LCU)`,
      monthlyUsd: regions * HOURS * (PRICES.nlbHour + o.nlbLcus * PRICES.nlbLcuHour),
    },
    { item: `Public IPv4 addresses: ${publicIps}`, monthlyUsd: publicIps * HOURS * PRICES.publicIpv4Hour },
    {
      item: `NAT gateways: ${nat}`,
      monthlyUsd: nat * (HOURS * PRICES.natHour + o.natGbPerGateway * PRICES.natGb),
    },
    {
      item: `Route53: zone + ${regions} health checks`,
      monthlyUsd: PRICES.route53HostedZoneMonth + regions * PRICES.route53HealthCheckMonth,
    },
    {
      item: `CloudWatch: ${regions * alarmsPerRegion} alarms, ${regions} dashboards, Container Insights, ${o.logGbPerRegion} GB logs/region`,
      monthlyUsd:
        regions *
        (alarmsPerRegion * PRICES.alarmMonth +
          PRICES.dashboardMonth +
          PRICES.containerInsightsClusterMonth +
          o.logGbPerRegion * PRICES.logsIngestGb),
    },
    {
      item: `DynamoDB: ${regions} replicas × ${o.tableGb} GB with PITR (requests negligible)`,
      monthlyUsd: regions * o.tableGb * (PRICES.dynamoStorageGbMonth + PRICES.dynamoPitrGbMonth),
    },
    { item: `Secrets Manager: ${secrets} secrets`, monthlyUsd: secrets * PRICES.secretMonth },
    { item: 'KMS: 1 customer-managed key', monthlyUsd: PRICES.kmsKeyMonth },
  ];
  return lines;
}

export function total(lines: readonly CostLine[]): number {
  return lines.reduce((sum, l) => sum + l.monthlyUsd, 0);
}

function format(lines: readonly CostLine[]): string {
  const width = Math.max(...lines.map((l) => l.item.length));
  return [
    ...lines.map((l) => `  ${l.item.padEnd(width)}  ${l.monthlyUsd.toFixed(2).padStart(9)}`),
    `  ${'total per month (USD)'.padEnd(width)}  ${total(lines).toFixed(2).padStart(9)}`,
  ].join('\n');
}

function flag(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const value = Number(args[i + 1]);
  if (!Number.isFinite(value) || value < 0)
    throw new Error(`${name} needs a non-negative number, got "${args[i + 1]}"`);
  return value;
}

function main(args: string[]): void {
  const path =
    args.find((a, i) => !a.startsWith('--') && !args[i - 1]?.startsWith('--')) ??
    'config/example.deployment.json';
  const config = parseDeploymentConfig(JSON.parse(readFileSync(path, 'utf8')));
  const base = {
    logGbPerRegion: flag(args, '--log-gb-per-region', 10),
    nlbLcus: 1,
    natGbPerGateway: 50,
    tableGb: 1,
  };
  const azs = Math.max(...config.regions.map((r) => r.availabilityZones.length));
  const egressTb = flag(args, '--egress-tb', 1);
  const out = [
    `Monthly estimate for "${config.name}": ${config.regions.length} regions (${config.regions.map((r) => r.region).join(', ')}), minimum task counts, us-east-1 list prices`,
    '',
    'Without NAT (tasks in public subnets with public IPs):',
    format(estimate(config, { ...base, natGatewaysPerRegion: 0 })),
    '',
    `With NAT (one gateway per AZ, ${azs} per region, tasks in private subnets):`,
    format(estimate(config, { ...base, natGatewaysPerRegion: azs })),
    '',
    `Plus data transfer out to the internet: ${egressTb} TB ≈ ${(egressTb * 1024 * PRICES.egressFirst10TbGb).toFixed(2)} USD at $${PRICES.egressFirst10TbGb}/GB (first 10 TB tier), in either case.`,
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) main(process.argv.slice(2));

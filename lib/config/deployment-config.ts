import { z } from 'zod';

/**
 * The deployment: which AWS account and regions the edge runs in, how DNS sends users to them,
 * how big the tasks are and which TLS engine they run. Validated once by `bin/app.ts`; the stacks
 * receive the frozen result and never read the environment themselves.
 */

const dnsName = z
  .string()
  .max(253)
  .regex(
    /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/,
    'must be a lowercase DNS name with at least two labels',
  );

const awsRegion = z
  .string()
  .regex(/^[a-z]{2}(-gov)?-[a-z]+-\d$/, 'must be an AWS region name such as eu-west-1');

/** Route53 geolocation continent codes. */
export const CONTINENTS = ['AF', 'AN', 'AS', 'EU', 'NA', 'OC', 'SA'] as const;

/** CloudWatch Logs accepts only these retention periods. */
const LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 3653];

/** Fargate's valid memory sizes (MiB) for each CPU size (units). */
const FARGATE_MEMORY: Readonly<Record<number, readonly number[]>> = {
  256: [512, 1024, 2048],
  512: [1024, 2048, 3072, 4096],
  1024: [2048, 3072, 4096, 5120, 6144, 7168, 8192],
  2048: Array.from({ length: 13 }, (_, i) => 4096 + i * 1024),
  4096: Array.from({ length: 23 }, (_, i) => 8192 + i * 1024),
};

const regionSchema = z
  .object({
    region: awsRegion,
    /** At least two, named explicitly so that synth needs no context lookups. */
    availabilityZones: z
      .array(z.string().regex(/^[a-z0-9-]+[a-z]$/))
      .min(2, 'needs at least 2 availability zones'),
    /** Overrides `network.natGateways` for this region. */
    natGateways: z.number().int().min(0).max(3).optional(),
    /**
     * Fixed public IPv4 addresses for the NLB, one per availability zone, so apex domains (which
     * cannot CNAME) can point A records at the edge. `create` allocates them in the stack (they are
     * retained when the stack is deleted); a list imports existing allocations. Default: none,
     * the NLB gets AWS-assigned addresses.
     */
    elasticIps: z
      .union([
        z.literal('create'),
        z.array(z.string().regex(/^eipalloc-[0-9a-f]{8,17}$/, 'must be an eipalloc id')),
      ])
      .optional(),
    /** Overrides the task count bounds for this region. */
    minTasks: z.number().int().min(1).optional(),
    maxTasks: z.number().int().min(1).optional(),
  })
  .strict();

export const deploymentConfigSchema = z
  .object({
    /** Prefix of stack and resource names; two deployments in one account need different names. */
    name: z
      .string()
      .regex(
        /^[a-z][a-z0-9-]{1,19}$/,
        'must be 2-20 lowercase letters, digits or dashes, starting with a letter',
      )
      .default('edge'),
    account: z.string().regex(/^\d{12}$/, 'must be a 12-digit AWS account id'),
    /** Where the global stack lives: the SNS topic, the table's primary replica, the ACME account key. */
    homeRegion: awsRegion,
    regions: z.array(regionSchema).min(1, 'needs at least one edge region'),
    /** The public hosted zone, given by id and name so synth needs no lookup. */
    hostedZone: z
      .object({
        id: z.string().regex(/^Z[A-Z0-9]{1,31}$/, 'must be a Route53 hosted zone id such as Z0123456789ABC'),
        name: dnsName,
      })
      .strict(),
    /** `<tenant>.<platformDomain>` and `<platformDomain>/<tenant>/` reach the edge. */
    platformDomain: dnsName,
    /** The label under the platform domain that custom domains CNAME to: `<label>.<platformDomain>`. */
    edgeLabel: z
      .string()
      .regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, 'must be one DNS label')
      .default('edge'),
    /** Continent or country (ISO 3166-1 alpha-2) → edge region; everyone else goes to `default`. */
    geolocation: z
      .object({
        default: awsRegion,
        continents: z.partialRecord(z.enum(CONTINENTS), awsRegion).default({}),
        countries: z
          .record(z.string().regex(/^[A-Z]{2}$/, 'must be an ISO 3166-1 alpha-2 code'), awsRegion)
          .default({}),
      })
      .strict(),
    task: z
      .object({
        cpu: z
          .union([z.literal(256), z.literal(512), z.literal(1024), z.literal(2048), z.literal(4096)])
          .default(1024),
        memoryMiB: z.number().int().default(2048),
        /** Fargate ephemeral storage; the proxy cache may use it minus `cacheHeadroomGiB`. */
        ephemeralStorageGiB: z.number().int().min(21).max(200).default(50),
        cacheHeadroomGiB: z.number().int().min(2).default(6),
        minTasks: z.number().int().min(1).default(2),
        maxTasks: z.number().int().min(1).default(10),
        /** Target average CPU utilisation of the service, percent. */
        cpuTargetPercent: z.number().int().min(10).max(90).default(60),
        /** Active client connections per task above which the service scales out. */
        connectionsPerTask: z.number().int().min(100).default(5000),
      })
      .strict()
      .prefault({}),
    /**
     * Where every region's alarms send their ALARM and OK notifications. `topicName` names an
     * existing topic in each region (the same name everywhere); without it each regional stack
     * creates `<name>-alarms`. `email` subscribes an address (it must confirm the subscription).
     */
    alarms: z
      .object({
        topicName: z
          .string()
          .regex(/^[A-Za-z0-9_-]{1,256}$/, 'must be an SNS topic name')
          .optional(),
        email: z.email().optional(),
      })
      .strict()
      .prefault({}),
    tlsEngine: z.enum(['native', 'auto-ssl']).default('native'),
    acme: z
      .object({
        /** Contact for the CA's expiry and policy notices. */
        email: z.email().optional(),
        /** Tried in order; the issuer falls back to the next when one fails. */
        directories: z
          .array(z.object({ name: z.string().regex(/^[a-z0-9-]+$/), directoryUrl: z.url() }).strict())
          .min(1, 'needs at least one ACME directory')
          .default([{ name: 'letsencrypt', directoryUrl: 'https://acme-v02.api.letsencrypt.org/directory' }]),
      })
      .strict()
      .prefault({}),
    network: z
      .object({
        /** NAT gateways per region (0: tasks run in public subnets with public IPs, no NAT cost). */
        natGateways: z.number().int().min(0).max(3).default(0),
        /** IPv6 too: a dual-stack VPC and NLB, and AAAA records next to the A records. */
        dualStack: z.boolean().default(false),
        vpcCidr: z
          .string()
          .regex(/^10\.\d{1,3}\.0\.0\/16$/, 'must be a 10.x.0.0/16 block')
          .default('10.40.0.0/16'),
      })
      .strict()
      .prefault({}),
    /** Optional origin bucket for tenants' static sites (home region). */
    originBucket: z
      .object({
        enabled: z.boolean().default(false),
        /**
         * S3 website hosting needs anonymous read. Off (the default) the bucket stays fully private;
         * on, objects (never listings) become publicly readable through the bucket policy only.
         */
        websiteHosting: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    redisPrefix: z
      .string()
      .regex(/^[a-z0-9_-]+$/i)
      .default('edge'),
    logRetentionDays: z
      .number()
      .refine((d) => LOG_RETENTION_DAYS.includes(d), 'must be a CloudWatch Logs retention period such as 30')
      .default(30),
    /** Prebuilt image URIs; by default both images are built from `edge-image/` at deploy time. */
    images: z
      .object({
        edge: z.string().min(1).optional(),
        sidecars: z.string().min(1).optional(),
        /**
         * The edge image built at deploy time: `debian` (edge-image/Dockerfile.edge, Debian trixie's
         * nginx with the Lua module, the one rehearsed) or `openresty` (Dockerfile.edge-openresty,
         * not verified on the project's machines). Default: `openresty` with `tlsEngine: auto-ssl`
         * (Debian does not package lua-resty-auto-ssl), else `debian`. See docs/images.md.
         */
        edgeBase: z.enum(['debian', 'openresty']).optional(),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((c, ctx) => {
    const names = c.regions.map((r) => r.region);
    const issue = (path: (string | number)[], message: string) =>
      ctx.addIssue({ code: 'custom', path, message });
    names.forEach((n, i) => {
      if (names.indexOf(n) !== i) issue(['regions', i, 'region'], `region "${n}" is listed twice`);
    });
    if (c.tlsEngine === 'auto-ssl' && c.images.edgeBase === 'debian' && !c.images.edge) {
      issue(
        ['images', 'edgeBase'],
        '"debian" has no lua-resty-auto-ssl: tlsEngine "auto-ssl" needs "openresty"',
      );
    }
    if (!names.includes(c.homeRegion)) {
      issue(['homeRegion'], `"${c.homeRegion}" is not one of the edge regions (${names.join(', ')})`);
    }
    c.regions.forEach((r, i) => {
      r.availabilityZones.forEach((az, j) => {
        if (!az.startsWith(r.region))
          issue(['regions', i, 'availabilityZones', j], `"${az}" is not in ${r.region}`);
      });
      if (Array.isArray(r.elasticIps) && r.elasticIps.length !== r.availabilityZones.length) {
        issue(
          ['regions', i, 'elasticIps'],
          `needs one allocation per availability zone (${r.availabilityZones.length}), got ${r.elasticIps.length}`,
        );
      }
      const routed =
        c.geolocation.default === r.region ||
        Object.values(c.geolocation.continents).includes(r.region) ||
        Object.values(c.geolocation.countries).includes(r.region);
      if (!routed)
        issue(['regions', i, 'region'], `${r.region} receives no traffic; map a continent or country to it`);
      const min = r.minTasks ?? c.task.minTasks;
      const max = r.maxTasks ?? c.task.maxTasks;
      if (max < min) issue(['regions', i, 'maxTasks'], `maxTasks ${max} is below minTasks ${min}`);
    });
    const targets: [(string | number)[], string][] = [
      [['geolocation', 'default'], c.geolocation.default],
      ...Object.entries(c.geolocation.continents).map(
        ([k, v]) => [['geolocation', 'continents', k], v] as [(string | number)[], string],
      ),
      ...Object.entries(c.geolocation.countries).map(
        ([k, v]) => [['geolocation', 'countries', k], v] as [(string | number)[], string],
      ),
    ];
    for (const [path, region] of targets) {
      if (!names.includes(region))
        issue(path, `"${region}" is not one of the edge regions (${names.join(', ')})`);
    }
    const zone = c.hostedZone.name;
    if (c.platformDomain !== zone && !c.platformDomain.endsWith(`.${zone}`)) {
      issue(['platformDomain'], `"${c.platformDomain}" is not inside the hosted zone "${zone}"`);
    }
    const memory = FARGATE_MEMORY[c.task.cpu] ?? [];
    if (!memory.includes(c.task.memoryMiB)) {
      issue(
        ['task', 'memoryMiB'],
        `${c.task.memoryMiB} MiB is not a Fargate size for ${c.task.cpu} CPU units (${memory[0]}-${memory.at(-1)})`,
      );
    }
    if (c.task.ephemeralStorageGiB - c.task.cacheHeadroomGiB < 1) {
      issue(['task', 'cacheHeadroomGiB'], 'leaves no ephemeral storage for the cache');
    }
    const nginx = nginxSizing(c.task.cpu, c.task.connectionsPerTask);
    if (nginx.workerRlimitNofile > FARGATE_MAX_NOFILE) {
      issue(
        ['task', 'connectionsPerTask'],
        `${c.task.connectionsPerTask} connections per task need ${nginx.workerRlimitNofile} open files per nginx worker on ${c.task.cpu} CPU units, above Fargate's limit of ${FARGATE_MAX_NOFILE}; use a larger task or a lower target`,
      );
    }
    const edgeMiB = Math.ceil((nginx.peakConnections * NGINX_KIB_PER_CONNECTION) / 1024);
    const availableMiB = Math.floor(c.task.memoryMiB * 0.75) - SIDECARS_MIB;
    if (edgeMiB > availableMiB) {
      issue(
        ['task', 'connectionsPerTask'],
        `${c.task.connectionsPerTask} connections per task need about ${edgeMiB} MiB in nginx (${nginx.peakConnections} connections at ${NGINX_KIB_PER_CONNECTION} KiB), but ${c.task.memoryMiB} MiB tasks leave ${availableMiB} MiB after Redis and the sidecars`,
      );
    }
  });

/** Fargate's hard limit on open files per container (ulimit nofile). */
const FARGATE_MAX_NOFILE = 1_048_576;
/** Rough nginx memory per open connection: TLS buffers, HTTP/2 state, proxy buffers. */
const NGINX_KIB_PER_CONNECTION = 32;
/** Memory reserved in the task for the three sidecars and the render container. */
const SIDECARS_MIB = 3 * 128 + 64;

/**
 * A proxied request holds two connections (client and origin). The service scales out when the
 * average reaches `connectionsPerTask`, but new tasks take minutes to serve, so each task must
 * keep accepting up to this multiple of the target before nginx refuses connections.
 */
export const NGINX_CONNECTION_HEADROOM = 2;
/** Connections nginx needs besides clients and origins: Redis pools, the issuer, the control port. */
const NGINX_SPARE_CONNECTIONS = 512;

/**
 * nginx sized to the task: one worker per vCPU (at least one), and enough connections per worker
 * (and open files: every connection is one, plus cache files and logs) that nginx never runs out
 * before scaling reacts.
 */
export function nginxSizing(cpuUnits: number, connectionsPerTask: number) {
  const workerProcesses = Math.max(1, Math.floor(cpuUnits / 1024));
  const peakConnections = connectionsPerTask * 2 * NGINX_CONNECTION_HEADROOM;
  const workerConnections = Math.ceil((peakConnections + NGINX_SPARE_CONNECTIONS) / workerProcesses);
  return {
    workerProcesses,
    workerConnections,
    workerRlimitNofile: workerConnections * 2,
    /** Client and origin connections of the whole task at the headroom. */
    peakConnections,
  };
}

export type DeploymentConfigInput = z.input<typeof deploymentConfigSchema>;
export type DeploymentConfig = Readonly<z.output<typeof deploymentConfigSchema>>;
export type RegionConfig = DeploymentConfig['regions'][number];

export class DeploymentConfigError extends Error {
  override name = 'DeploymentConfigError';
}

/** Validates once; the result is deeply frozen so no stack can change what another one sees. */
export function parseDeploymentConfig(input: unknown): DeploymentConfig {
  const result = deploymentConfigSchema.safeParse(input);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new DeploymentConfigError(`invalid deployment config:\n${lines.join('\n')}`);
  }
  return deepFreeze(result.data);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Derived names shared by the stacks, the task and the docs. */
export function deploymentNames(c: DeploymentConfig) {
  return {
    globalStack: `${c.name}-global`,
    regionalStack: (region: string) => `${c.name}-${region}`,
    topic: `${c.name}-events`,
    topicKeyAlias: `alias/${c.name}-events`,
    table: `${c.name}-state`,
    acmeAccountSecret: `${c.name}/acme-account-key`,
    /** Each task's sqs-listener creates `<queuePrefix><task id>`; IAM is scoped to this prefix. */
    queuePrefix: `${c.name}-task-`,
    deadLetterQueue: `${c.name}-dlq`,
    edgeHostname: `${c.edgeLabel}.${c.platformDomain}`,
    /** Latency records of every region, health-checked: where any location fails over to. */
    anyRegionHostname: `any.${c.edgeLabel}.${c.platformDomain}`,
    /** One region's failover pair: its own NLB while healthy, else `anyRegionHostname`. */
    regionHostname: (region: string) => `${region}.${c.edgeLabel}.${c.platformDomain}`,
    /** Resolves to one region's NLB only; the Route53 health check requests its canary here. */
    healthCheckHostname: (region: string) => `edge-health-${region}.${c.platformDomain}`,
    /** Multi-region KMS key wrapping the private keys' data keys, same alias in every region. */
    privateKeyAlias: `alias/${c.name}-private-keys`,
    /** SSM parameter in the home region holding the primary key's ARN. */
    privateKeyPrimaryParameter: `/${c.name}/private-keys/primary-key-arn`,
    alarmTopic: c.alarms.topicName ?? `${c.name}-alarms`,
  };
}

/** Task count bounds for one region. */
export function taskBounds(c: DeploymentConfig, r: RegionConfig): { min: number; max: number } {
  return { min: r.minTasks ?? c.task.minTasks, max: r.maxTasks ?? c.task.maxTasks };
}

import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { deepFreeze, defineEnvContract, env } from '../../config/env-contract.ts';
import { hostnameSchema } from '../../core/redis-format.ts';
import { bool, int, json, logLevel, port, redisPrefix, region } from '../runtime/env-schemas.ts';
import { IssuerConfigError } from './errors.ts';

/**
 * The issuer's configuration: validated once at start, deeply frozen. The container reads it from
 * the environment through `issuerEnv` (its contract) and `issuerConfigFromEnv`; tests and the
 * local quick start build it directly with `parseIssuerConfig`.
 */

const seconds = z.number().int().min(0);
const positive = z.number().int().min(1);

const caSchema = z.object({
  /** Short name used in logs, metrics and budget keys, e.g. "letsencrypt". */
  name: z.string().regex(/^[a-z0-9-]{1,32}$/),
  directoryUrl: z.url(),
  /** External account binding, for CAs that require it. The HMAC key is base64url. */
  eab: z.object({ kid: z.string().min(1), hmacKey: z.string().min(1) }).optional(),
  /**
   * Apply the Let's Encrypt limits to this CA (default true). Off for CAs with other limits;
   * 429 answers are honoured regardless.
   */
  budget: z.boolean().default(true),
});

const budgetSchema = z
  .object({
    /** New orders per account per 3 hours (Let's Encrypt: 300). */
    ordersPer3h: positive.default(300),
    /** Certificates per registered domain per week (Let's Encrypt: 50). */
    certsPerDomainPerWeek: positive.default(50),
    /** Certificates for the exact same set of names per week (Let's Encrypt: 5). */
    duplicatesPerWeek: positive.default(5),
    /** Failed authorizations per name per hour (Let's Encrypt: 5). */
    failedAuthzPerNamePerHour: positive.default(5),
    /** At or below this share of a limit left (percent), the issuer logs `budget_low`. */
    lowHeadroomPercent: z.number().min(0).max(100).default(20),
  })
  .prefault({});

export const issuerConfigSchema = z
  .object({
    region: z
      .string()
      .regex(/^[a-z0-9-]{1,32}$/)
      .default('local'),
    /** Identifies this issuer as a lease owner; defaults to region/host/pid/random. */
    ownerId: z.string().min(1).max(200).optional(),
    platformDomain: hostnameSchema,
    listen: z
      .object({
        /** Loopback only: the edge in the same task is the only client. */
        host: z.string().default('127.0.0.1'),
        /** 0 picks a free port (tests). */
        port: z.number().int().min(0).max(65535).default(9180),
      })
      .prefault({}),
    redis: z
      .object({
        host: z.string().default('127.0.0.1'),
        port: z.number().int().min(1).max(65535).default(6379),
        prefix: z
          .string()
          .regex(/^[a-z0-9_-]+$/i)
          .default('edge'),
        password: z.string().optional(),
      })
      .prefault({}),
    table: z.object({
      name: z.string().min(3).max(255),
      /** DynamoDB endpoint override (dynalite); the home region's table otherwise. */
      endpoint: z.url().optional(),
      region: z.string().default('us-east-1'),
    }),
    acme: z.object({
      /** Ordered: the first CA is used, the next ones when it fails or rate-limits. */
      cas: z.array(caSchema).min(1),
      email: z.email().optional(),
      account: z.discriminatedUnion('source', [
        z.object({
          source: z.literal('file'),
          path: z.string().min(1),
          /** Create a P-256 account key at `path` when none exists (local runs). */
          create: z.boolean().default(false),
        }),
        z.object({ source: z.literal('secrets-manager'), secretId: z.string().min(1) }),
      ]),
      /** Extra CA certificates trusted for the ACME server's own HTTPS (Pebble locally). */
      trustPem: z.string().optional(),
      keyType: z.enum(['ecdsa-p256', 'rsa-2048']).default('ecdsa-p256'),
      /** Poll pacing while waiting for challenge/order status. */
      pollMinMs: positive.default(100),
      pollMaxMs: positive.default(3000),
      pollAttempts: positive.default(15),
    }),
    dns: z
      .discriminatedUnion('provider', [
        z.object({ provider: z.literal('none') }),
        z.object({
          provider: z.literal('route53'),
          hostedZoneId: z.string().min(1),
          ttlSeconds: positive.default(60),
        }),
        z.object({ provider: z.literal('challtestsrv'), url: z.url() }),
      ])
      .default({ provider: 'none' }),
    lease: z
      .object({
        ttlSeconds: positive.default(300),
        /** How long a handshake-triggered request waits for another holder's certificate. */
        waitForHolderMs: positive.default(10_000),
      })
      .prefault({}),
    backoff: z
      .object({
        baseSeconds: positive.default(300),
        maxSeconds: positive.default(24 * 3600),
      })
      .prefault({}),
    renewal: z
      .object({
        enabled: z.boolean().default(true),
        /** Without ARI: renew this long before expiry. */
        beforeExpiryDays: positive.default(30),
        /** Spread renewals over this many seconds so a fleet does not renew in lockstep. */
        jitterSeconds: seconds.default(12 * 3600),
        intervalSeconds: positive.default(3600),
        /** Ask the CA's ARI endpoint when its directory offers `renewalInfo`. */
        ari: z.boolean().default(true),
      })
      .prefault({}),
    budget: budgetSchema,
    /** Issue the platform wildcard (`*.<platform>` + apex) by DNS-01 at start and keep it renewed. */
    wildcard: z.boolean().default(false),
    /**
     * Delegated DNS-01: tenants CNAME `_acme-challenge.<domain>` to `<id>.<zone>` and the issuer
     * answers in `zone` (through `dns`). Off when absent: custom domains use HTTP-01.
     */
    delegation: z
      .object({
        zone: hostnameSchema,
        /** DNS servers asked for the `_acme-challenge` CNAME ("127.0.0.1:8053"); default the system's. */
        resolvers: z.array(z.string().min(1)).default([]),
      })
      .optional(),
  })
  .strict()
  .refine((c) => !c.delegation || c.dns.provider !== 'none', {
    path: ['delegation'],
    message: 'delegated DNS-01 needs a DNS provider (dns.provider route53 or challtestsrv)',
  });

export type IssuerConfigInput = z.input<typeof issuerConfigSchema>;
export type IssuerConfig = Readonly<z.output<typeof issuerConfigSchema>>;
export type CaConfig = z.output<typeof caSchema>;
export type BudgetConfig = z.output<typeof budgetSchema>;

export function parseIssuerConfig(input: unknown): IssuerConfig {
  const result = issuerConfigSchema.safeParse(input);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new IssuerConfigError(`invalid issuer config:\n${lines.join('\n')}`);
  }
  return deepFreeze(result.data);
}

const opt = <S extends z.ZodType>(schema: S) => schema.optional();

/** The issuer's environment contract (lib/infra builds its container's environment from it). */
export const issuerEnv = defineEnvContract(
  'issuer',
  {
    region: env.optional('EDGE_REGION', region.default('local'), 'The region this task runs in.'),
    homeRegion: env.optional(
      'EDGE_HOME_REGION',
      opt(region),
      "The table's home region (leases are written there); default AWS_REGION.",
    ),
    logLevel: env.optional('EDGE_LOG_LEVEL', logLevel, 'debug, info, warn or error.'),
    ownerId: env.optional(
      'EDGE_LEASE_OWNER_ID',
      opt(z.string().min(1).max(200)),
      'Lease owner id; default region/host/pid/random.',
    ),
    platformDomain: env.required(
      'EDGE_PLATFORM_DOMAIN',
      hostnameSchema,
      'The platform domain, e.g. platform.example.',
    ),
    listenHost: env.optional(
      'EDGE_ISSUER_HOST',
      opt(z.string().min(1)),
      'Address of the API (default 127.0.0.1).',
    ),
    listenPort: env.optional(
      'EDGE_ISSUER_PORT',
      opt(z.coerce.number().int().min(0).max(65535)),
      'Port of the API and /healthz (default 9180).',
    ),
    redisHost: env.optional(
      'EDGE_REDIS_HOST',
      opt(z.string().min(1)),
      "The task's Redis (default 127.0.0.1).",
    ),
    redisPort: env.optional('EDGE_REDIS_PORT', opt(port), "The task's Redis port (default 6379)."),
    redisPrefix: env.optional(
      'EDGE_REDIS_PREFIX',
      opt(redisPrefix),
      'Prefix of every Redis key (default edge).',
    ),
    redisPassword: env.secret(
      'EDGE_REDIS_PASSWORD',
      opt(z.string().min(1)),
      false,
      "The task's Redis password, if any.",
    ),
    tableName: env.required('EDGE_TABLE_NAME', z.string().min(3).max(255), 'The DynamoDB table.'),
    dynamodbEndpoint: env.optional(
      'EDGE_DYNAMODB_ENDPOINT',
      opt(z.url()),
      'dynalite or DynamoDB Local; unset on AWS.',
    ),
    acmeCas: env.optional(
      'EDGE_ACME_CAS',
      opt(json),
      'JSON array of {name, directoryUrl, eab?, budget?}, in order of preference.',
    ),
    acmeDirectoryUrl: env.optional(
      'EDGE_ACME_DIRECTORY_URL',
      opt(z.url()),
      'One-CA shorthand for EDGE_ACME_CAS.',
    ),
    acmeCaName: env.optional('EDGE_ACME_CA_NAME', opt(z.string().min(1)), 'Its name (default "default").'),
    acmeEabKid: env.optional(
      'EDGE_ACME_EAB_KID',
      opt(z.string().min(1)),
      'Its external account binding key id.',
    ),
    acmeEabHmacKey: env.secret(
      'EDGE_ACME_EAB_HMAC_KEY',
      opt(z.string().min(1)),
      false,
      'Its EAB HMAC key (base64url).',
    ),
    acmeEmail: env.optional('EDGE_ACME_EMAIL', opt(z.email()), 'Contact of the ACME account.'),
    acmeAccountSecretId: env.optional(
      'EDGE_ACME_ACCOUNT_SECRET_ID',
      opt(z.string().min(1)),
      'The Secrets Manager secret holding the account key (read with the task role).',
    ),
    acmeAccountKeyFile: env.optional(
      'EDGE_ACME_ACCOUNT_KEY_FILE',
      opt(z.string().min(1)),
      'The account key file (local runs).',
    ),
    acmeAccountKeyCreate: env.optional(
      'EDGE_ACME_ACCOUNT_KEY_CREATE',
      opt(bool),
      'Create that file when missing.',
    ),
    acmeTrustFile: env.optional(
      'EDGE_ACME_TRUST_FILE',
      opt(z.string().min(1)),
      "Extra CA certificates for the ACME server's HTTPS (a file).",
    ),
    acmeTrustPem: env.optional('EDGE_ACME_TRUST_PEM', opt(z.string().min(1)), 'The same, inline PEM.'),
    keyType: env.optional(
      'EDGE_CERT_KEY_TYPE',
      opt(z.enum(['ecdsa-p256', 'rsa-2048'])),
      'Key type of issued certificates.',
    ),
    dnsProvider: env.optional(
      'EDGE_DNS01_PROVIDER',
      z.enum(['none', 'route53', 'challtestsrv']).default('none'),
      'Where DNS-01 records are written.',
    ),
    route53HostedZoneId: env.optional(
      'EDGE_ROUTE53_HOSTED_ZONE_ID',
      opt(z.string().min(1)),
      'The zone (EDGE_DNS01_PROVIDER=route53).',
    ),
    route53TtlSeconds: env.optional('EDGE_ROUTE53_TTL_SECONDS', opt(int(1)), 'TTL of challenge records.'),
    challtestsrvUrl: env.optional(
      'EDGE_CHALLTESTSRV_URL',
      opt(z.url()),
      'pebble-challtestsrv (EDGE_DNS01_PROVIDER=challtestsrv).',
    ),
    leaseTtlSeconds: env.optional('EDGE_LEASE_TTL_SECONDS', opt(int(1)), 'Issuance lease lifetime.'),
    backoffBaseSeconds: env.optional(
      'EDGE_BACKOFF_BASE_SECONDS',
      opt(int(1)),
      'First backoff after a failure.',
    ),
    backoffMaxSeconds: env.optional('EDGE_BACKOFF_MAX_SECONDS', opt(int(1)), 'Longest backoff.'),
    renewalEnabled: env.optional(
      'EDGE_RENEWAL_ENABLED',
      opt(bool),
      'Run the renewal scheduler (default true).',
    ),
    renewBeforeDays: env.optional(
      'EDGE_RENEW_BEFORE_DAYS',
      opt(int(1)),
      'Without ARI: renew this long before expiry.',
    ),
    renewJitterSeconds: env.optional('EDGE_RENEW_JITTER_SECONDS', opt(int(0)), 'Spread of renewals.'),
    renewIntervalSeconds: env.optional(
      'EDGE_RENEW_INTERVAL_SECONDS',
      opt(int(1)),
      'How often renewals are checked.',
    ),
    wildcard: env.optional(
      'EDGE_ISSUE_WILDCARD',
      opt(bool),
      'Issue and renew the platform wildcard by DNS-01.',
    ),
    challengeZone: env.optional(
      'EDGE_DNS01_CHALLENGE_ZONE',
      opt(hostnameSchema),
      'Delegated DNS-01: the zone tenants CNAME _acme-challenge.<domain> into (inside the DNS-01 zone); unset: HTTP-01 only.',
    ),
    challengeResolvers: env.optional(
      'EDGE_DNS01_RESOLVERS',
      opt(
        z.string().transform((v) =>
          v
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean),
        ),
      ),
      'DNS servers (comma-separated) asked for _acme-challenge CNAMEs; default the system resolvers.',
    ),
    shutdownDeadlineMs: env.optional(
      'EDGE_SHUTDOWN_DEADLINE_MS',
      int(1000).default(30_000),
      'Hard deadline of a graceful stop; running orders get all but the last 5 s of it.',
    ),
  },
  (c, fail) => {
    if (c.acmeCas === undefined && c.acmeDirectoryUrl === undefined) {
      fail('acmeDirectoryUrl', 'or EDGE_ACME_CAS is required');
    }
    if (c.acmeAccountSecretId === undefined && c.acmeAccountKeyFile === undefined) {
      fail('acmeAccountKeyFile', 'or EDGE_ACME_ACCOUNT_SECRET_ID is required');
    }
    if (c.dnsProvider === 'route53' && !c.route53HostedZoneId) {
      fail('route53HostedZoneId', 'is required with EDGE_DNS01_PROVIDER=route53');
    }
    if (c.dnsProvider === 'challtestsrv' && !c.challtestsrvUrl) {
      fail('challtestsrvUrl', 'is required with EDGE_DNS01_PROVIDER=challtestsrv');
    }
  },
);

export type IssuerEnv = ReturnType<typeof issuerEnv.parse>;
export type IssuerEnvVars = typeof issuerEnv.vars;

/**
 * The issuer's config from its environment: the contract first (each problem names its variable),
 * then the issuer's own schema. `AWS_REGION` (set by ECS, read by the SDK) is the table's region
 * when EDGE_HOME_REGION is unset.
 */
export function issuerConfigFromEnv(e: NodeJS.ProcessEnv): IssuerConfig {
  return issuerConfigFromVars(issuerEnv.parse(e), e.AWS_REGION);
}

/** The issuer's config from its parsed environment contract. */
export function issuerConfigFromVars(vars: IssuerEnv, awsRegion?: string): IssuerConfig {
  let trustPem = vars.acmeTrustPem;
  if (vars.acmeTrustFile) {
    try {
      trustPem = readFileSync(vars.acmeTrustFile, 'utf8');
    } catch (err) {
      throw new IssuerConfigError(
        `EDGE_ACME_TRUST_FILE: cannot read ${vars.acmeTrustFile} (${(err as Error).message})`,
      );
    }
  }
  const cas = vars.acmeCas ?? [
    {
      name: vars.acmeCaName ?? 'default',
      directoryUrl: vars.acmeDirectoryUrl,
      ...(vars.acmeEabKid ? { eab: { kid: vars.acmeEabKid, hmacKey: vars.acmeEabHmacKey ?? '' } } : {}),
    },
  ];
  const account = vars.acmeAccountSecretId
    ? { source: 'secrets-manager', secretId: vars.acmeAccountSecretId }
    : { source: 'file', path: vars.acmeAccountKeyFile, create: vars.acmeAccountKeyCreate };
  const dns =
    vars.dnsProvider === 'route53'
      ? { provider: 'route53', hostedZoneId: vars.route53HostedZoneId, ttlSeconds: vars.route53TtlSeconds }
      : vars.dnsProvider === 'challtestsrv'
        ? { provider: 'challtestsrv', url: vars.challtestsrvUrl }
        : { provider: 'none' };
  const input = {
    region: vars.region,
    ownerId: vars.ownerId,
    platformDomain: vars.platformDomain,
    listen: { host: vars.listenHost, port: vars.listenPort },
    redis: {
      host: vars.redisHost,
      port: vars.redisPort,
      prefix: vars.redisPrefix,
      password: vars.redisPassword,
    },
    table: { name: vars.tableName, endpoint: vars.dynamodbEndpoint, region: vars.homeRegion ?? awsRegion },
    acme: { cas, email: vars.acmeEmail, account, trustPem, keyType: vars.keyType },
    dns,
    lease: { ttlSeconds: vars.leaseTtlSeconds },
    backoff: { baseSeconds: vars.backoffBaseSeconds, maxSeconds: vars.backoffMaxSeconds },
    renewal: {
      enabled: vars.renewalEnabled,
      beforeExpiryDays: vars.renewBeforeDays,
      jitterSeconds: vars.renewJitterSeconds,
      intervalSeconds: vars.renewIntervalSeconds,
    },
    wildcard: vars.wildcard,
    ...(vars.challengeZone
      ? { delegation: { zone: vars.challengeZone, resolvers: vars.challengeResolvers } }
      : {}),
  };
  return parseIssuerConfig(input);
}

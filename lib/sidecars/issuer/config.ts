import { z } from 'zod';
import { hostnameSchema } from '../../core/redis-format.ts';
import { IssuerConfigError } from './errors.ts';

/**
 * The issuer's configuration: validated once at start, frozen. `bin/issuer.ts` builds the input
 * from the environment (`issuerConfigFromEnv`); tests build it directly.
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
  })
  .strict();

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
  return Object.freeze(result.data);
}

function int(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  if (!Number.isInteger(n)) throw new IssuerConfigError(`expected an integer, got "${value}"`);
  return n;
}

function bool(value: string | undefined): boolean | undefined {
  if (value === undefined || value === '') return undefined;
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw new IssuerConfigError(`expected true or false, got "${value}"`);
}

function json(name: string, value: string | undefined): unknown {
  if (value === undefined || value === '') return undefined;
  try {
    return JSON.parse(value);
  } catch {
    throw new IssuerConfigError(`${name} is not valid JSON`);
  }
}

/**
 * The config from environment variables (the container's interface). `ISSUER_ACME_CAS` is a JSON
 * array of `{name, directoryUrl, eab?}`; `ISSUER_ACME_DIRECTORY_URL` is the one-CA shorthand.
 */
export function issuerConfigFromEnv(env: NodeJS.ProcessEnv): IssuerConfigInput {
  const cas =
    json('ISSUER_ACME_CAS', env.ISSUER_ACME_CAS) ??
    (env.ISSUER_ACME_DIRECTORY_URL
      ? [
          {
            name: env.ISSUER_ACME_CA_NAME ?? 'default',
            directoryUrl: env.ISSUER_ACME_DIRECTORY_URL,
            ...(env.ISSUER_ACME_EAB_KID
              ? { eab: { kid: env.ISSUER_ACME_EAB_KID, hmacKey: env.ISSUER_ACME_EAB_HMAC_KEY ?? '' } }
              : {}),
          },
        ]
      : []);
  const account = env.ISSUER_ACME_ACCOUNT_SECRET_ID
    ? { source: 'secrets-manager', secretId: env.ISSUER_ACME_ACCOUNT_SECRET_ID }
    : {
        source: 'file',
        path: env.ISSUER_ACME_ACCOUNT_KEY_FILE ?? '',
        create: bool(env.ISSUER_ACME_ACCOUNT_KEY_CREATE),
      };
  const dnsProvider = env.ISSUER_DNS_PROVIDER ?? 'none';
  const dns =
    dnsProvider === 'route53'
      ? {
          provider: 'route53',
          hostedZoneId: env.ISSUER_ROUTE53_HOSTED_ZONE_ID ?? '',
          ttlSeconds: int(env.ISSUER_ROUTE53_TTL_SECONDS),
        }
      : dnsProvider === 'challtestsrv'
        ? { provider: 'challtestsrv', url: env.ISSUER_CHALLTESTSRV_URL ?? '' }
        : { provider: dnsProvider };
  return {
    region: env.EDGE_REGION,
    ownerId: env.ISSUER_OWNER_ID,
    platformDomain: env.EDGE_PLATFORM_DOMAIN ?? '',
    listen: { host: env.ISSUER_LISTEN_HOST, port: int(env.ISSUER_PORT) },
    redis: {
      host: env.EDGE_REDIS_HOST,
      port: int(env.EDGE_REDIS_PORT),
      prefix: env.EDGE_REDIS_PREFIX,
      password: env.EDGE_REDIS_PASSWORD || undefined,
    },
    table: {
      name: env.EDGE_TABLE_NAME ?? '',
      endpoint: env.EDGE_DYNAMODB_ENDPOINT || undefined,
      region: env.EDGE_HOME_REGION ?? env.AWS_REGION,
    },
    acme: {
      cas: cas as IssuerConfigInput['acme']['cas'],
      email: env.ISSUER_ACME_EMAIL || undefined,
      account: account as IssuerConfigInput['acme']['account'],
      trustPem: env.ISSUER_ACME_TRUST_PEM || undefined,
      keyType: env.ISSUER_KEY_TYPE as IssuerConfigInput['acme']['keyType'],
    },
    dns: dns as IssuerConfigInput['dns'],
    lease: { ttlSeconds: int(env.ISSUER_LEASE_TTL_SECONDS) },
    backoff: {
      baseSeconds: int(env.ISSUER_BACKOFF_BASE_SECONDS),
      maxSeconds: int(env.ISSUER_BACKOFF_MAX_SECONDS),
    },
    renewal: {
      enabled: bool(env.ISSUER_RENEWAL_ENABLED),
      beforeExpiryDays: int(env.ISSUER_RENEW_BEFORE_DAYS),
      jitterSeconds: int(env.ISSUER_RENEW_JITTER_SECONDS),
      intervalSeconds: int(env.ISSUER_RENEW_INTERVAL_SECONDS),
    },
    wildcard: bool(env.ISSUER_WILDCARD),
  };
}

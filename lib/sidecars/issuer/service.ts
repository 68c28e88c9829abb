import { randomBytes } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import { hostname } from 'node:os';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Route53Client } from '@aws-sdk/client-route-53';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { RedisKeys } from '../../core/redis-format.ts';
import { IssuanceStore } from '../../core/store/issuance.ts';
import { LeaseStore } from '../../core/store/lease.ts';
import { HealthServer } from '../runtime/health.ts';
import {
  type AccountKeySource,
  FileAccountKey,
  jwkThumbprint,
  SecretsManagerAccountKey,
} from './account-key.ts';
import { AcmeCa, configureAcmeTransport } from './acme.ts';
import { AriClient } from './ari.ts';
import { Budget } from './budget.ts';
import { RedisCertStore } from './cert-store.ts';
import type { IssuerConfig } from './config.ts';
import { DelegatedTrigger } from './delegated-trigger.ts';
import { ChallTestSrvDns } from './dns/challtestsrv.ts';
import type { DnsPort } from './dns/port.ts';
import { Route53Dns } from './dns/route53.ts';
import { BudgetHeadroom } from './headroom.ts';
import { Issuer } from './issuer.ts';
import { RenewalScheduler } from './renewal.ts';
import { apiRoutes } from './server.ts';
import { type CertificateStatus, readCertificateState } from './state.ts';

export interface IssuerServiceOverrides {
  readonly accountKey?: AccountKeySource;
  readonly dns?: DnsPort;
  readonly dynamo?: DynamoDBClient;
}

export interface IssuerService {
  readonly issuer: Issuer;
  readonly scheduler: RenewalScheduler;
  readonly certs: RedisCertStore;
  readonly issuance: IssuanceStore;
  readonly cas: readonly AcmeCa[];
  /** The API's base URL (what the edge's tls.issuerUrl points at). */
  readonly url: string;
  /** Serves the API, /healthz and /readyz (ready from start until stop). */
  readonly health: HealthServer;
  /** JWK thumbprint of the account key (the edge's acme.accountThumbprint). */
  readonly thumbprint: string;
  readonly owner: string;
  state(domain: string): Promise<CertificateStatus>;
  /** Graceful stop: refuse new requests, let running orders finish (up to `deadlineMs`), close clients. */
  stop(deadlineMs?: number): Promise<void>;
}

function dnsPort(config: IssuerConfig): DnsPort | undefined {
  const dns = config.dns;
  if (dns.provider === 'route53') {
    return new Route53Dns({
      client: new Route53Client({}),
      hostedZoneId: dns.hostedZoneId,
      ttlSeconds: dns.ttlSeconds,
    });
  }
  if (dns.provider === 'challtestsrv') return new ChallTestSrvDns(dns.url);
  return undefined;
}

/** Builds and starts the issuer: API, renewal scheduler and (when configured) the platform wildcard. */
export async function startIssuerService(
  config: IssuerConfig,
  log: Logger,
  overrides: IssuerServiceOverrides = {},
): Promise<IssuerService> {
  const owner =
    config.ownerId ?? `${config.region}/${hostname()}/${process.pid}/${randomBytes(4).toString('hex')}`;
  const accountSource =
    overrides.accountKey ??
    (config.acme.account.source === 'file'
      ? new FileAccountKey(config.acme.account.path, config.acme.account.create)
      : new SecretsManagerAccountKey(new SecretsManagerClient({}), config.acme.account.secretId));
  const accountKeyPem = await accountSource.load();
  const thumbprint = jwkThumbprint(accountKeyPem);

  configureAcmeTransport({ trustPem: config.acme.trustPem });
  const redis = new Redis({
    host: config.redis.host,
    port: config.redis.port,
    password: config.redis.password,
    maxRetriesPerRequest: 2,
    lazyConnect: true,
  });
  redis.on('error', (err) => log.warn({ err: err.message }, 'redis error'));
  await redis.connect();
  const certs = new RedisCertStore(redis, new RedisKeys(config.redis.prefix));

  const dynamo =
    overrides.dynamo ??
    new DynamoDBClient({
      region: config.table.region,
      ...(config.table.endpoint
        ? { endpoint: config.table.endpoint, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }
        : {}),
    });
  const doc = DynamoDBDocumentClient.from(dynamo, { marshallOptions: { removeUndefinedValues: true } });
  const leases = new LeaseStore(doc, config.table.name, owner, config.lease.ttlSeconds);
  const issuance = new IssuanceStore(doc, config.table.name, owner);
  const budget = new Budget(doc, config.table.name);

  const dns = overrides.dns ?? dnsPort(config);
  const cas = config.acme.cas.map(
    (ca) =>
      new AcmeCa(ca, {
        accountKeyPem,
        onAccountReset: (ca, reason) =>
          log.warn({ ca, reason }, 'the CA forgot the ACME account; registered again'),
        email: config.acme.email,
        dns,
        http01: certs,
        poll: {
          minMs: config.acme.pollMinMs,
          maxMs: config.acme.pollMaxMs,
          attempts: config.acme.pollAttempts,
        },
      }),
  );
  const delegation = config.delegation && {
    zone: config.delegation.zone,
    resolver: new Resolver({ timeout: 3000, tries: 2 }),
  };
  if (delegation && config.delegation?.resolvers.length) {
    delegation.resolver.setServers([...config.delegation.resolvers]);
  }
  const issuer = new Issuer({
    config,
    cas,
    certs,
    leases,
    issuance,
    budget,
    log,
    ...(delegation
      ? {
          delegation: {
            zone: delegation.zone,
            resolveCname: (name: string) => delegation.resolver.resolveCname(name),
          },
        }
      : {}),
  });
  const headroom = new BudgetHeadroom({
    budget,
    config: config.budget,
    cas: config.acme.cas.filter((ca) => ca.budget).map((ca) => ca.name),
    log: log.child({ part: 'budget' }),
  });
  const scheduler = new RenewalScheduler(
    {
      issuer,
      certs,
      ari: config.renewal.ari ? new AriClient({ ca: config.acme.trustPem }) : undefined,
      log: log.child({ part: 'renewal' }),
      headroom,
    },
    {
      beforeExpiryDays: config.renewal.beforeExpiryDays,
      jitterSeconds: config.renewal.jitterSeconds,
      intervalSeconds: config.renewal.intervalSeconds,
      ariDirectoryUrl: config.renewal.ari ? config.acme.cas[0]?.directoryUrl : undefined,
    },
  );

  const state = (domain: string) =>
    readCertificateState({ certs, issuance }, domain, { renewBeforeDays: config.renewal.beforeExpiryDays });
  const health: HealthServer = new HealthServer(
    config.listen.host,
    config.listen.port,
    apiRoutes({
      issuer,
      state,
      thumbprint,
      log,
      ready: () => health.ready,
      expiry: scheduler.expiry,
      headroom: headroom.report,
    }),
    (err) => log.error({ err }, 'api handler failed'),
  );
  try {
    await health.start();
  } catch (err) {
    redis.disconnect();
    throw err;
  }
  health.setReady(true);
  const url = health.url;
  if (config.renewal.enabled) scheduler.start();
  const trigger = delegation ? new DelegatedTrigger({ redis, certs, issuer, log }) : undefined;
  await trigger?.start();
  if (config.wildcard) {
    issuer.request(issuer.wildcardName).then(
      (outcome) => log.info({ outcome }, 'platform wildcard checked'),
      (err) => log.error({ err }, 'platform wildcard request failed'),
    );
  }
  log.info({ url, thumbprint, owner, cas: cas.map((c) => c.name) }, 'issuer started');

  return {
    issuer,
    scheduler,
    certs,
    issuance,
    cas,
    url,
    thumbprint,
    owner,
    state,
    health,
    async stop(deadlineMs = 25_000) {
      health.setReady(false, { reason: 'shutting down' });
      const closed = health.stop(false);
      const deadline = new Promise<void>((resolve) => setTimeout(resolve, deadlineMs).unref());
      trigger?.stop();
      await Promise.race([Promise.all([scheduler.stop(), issuer.drain(), closed]), deadline]);
      health.closeAll();
      redis.disconnect();
      if (!overrides.dynamo) dynamo.destroy();
    },
  };
}

import { join } from 'node:path';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import type { EdgeConfigInput } from '../../lib/config/edge-config.ts';
import { RedisKeys } from '../../lib/core/redis-format.ts';
import { ensureTable } from '../../lib/core/table.ts';
import { type Dynalite, startDynalite } from '../../lib/local/dynalite.ts';
import { type LocalPebble, startPebble } from '../../lib/local/pebble.ts';
import { freePort } from '../../lib/local/ports.ts';
import { startRedisServer } from '../../lib/local/redis-server.ts';
import { FileAccountKey, jwkThumbprint } from '../../lib/sidecars/issuer/account-key.ts';
import { type IssuerConfigInput, parseIssuerConfig } from '../../lib/sidecars/issuer/config.ts';
import { ChallTestSrvDns } from '../../lib/sidecars/issuer/dns/challtestsrv.ts';
import { type IssuerService, startIssuerService } from '../../lib/sidecars/issuer/service.ts';
import { createLogger } from '../../lib/sidecars/runtime/logger.ts';
import { type EdgeStack, PLATFORM, startEdgeStack } from '../harness/edge-stack.ts';
import type { TestBed } from '../harness/testbed.ts';

/** What the stack needs of a TestBed (bench/ passes a plain object). */
export type Bed = Pick<TestBed, 'dir' | 'track' | 'onStop'>;

export const TABLE = 'edge-test';

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

export interface IssuerStack {
  edge: EdgeStack;
  pebble: LocalPebble;
  dynalite: Dynalite;
  dns: ChallTestSrvDns;
  issuer: IssuerService;
  /** Pebble's root for this run: what issued certificates chain to. */
  root: string;
  thumbprint: string;
  /** Another issuer ("another task"): its own Redis unless `redisPort` is given, same table and CA. */
  startIssuer(
    name: string,
    config?: DeepPartial<IssuerConfigInput>,
    redisPort?: number,
  ): Promise<IssuerService>;
  /** The issuer config used for `issuer`, with overrides. */
  issuerConfig(name: string, redisPort: number, config?: DeepPartial<IssuerConfigInput>): IssuerConfigInput;
}

function merge<T>(base: T, extra: unknown): T {
  if (!extra || typeof extra !== 'object' || Array.isArray(extra)) return (extra ?? base) as T;
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [k, v] of Object.entries(extra)) out[k] = merge(out[k], v);
  return out as T;
}

/**
 * Pebble + challtestsrv, dynalite with the table, redis-server, the edge (nginx) with the issuer
 * hook on, and one issuer service in this process. Pebble validates HTTP-01 on the edge's port.
 */
export async function startIssuerStack(
  bed: Bed,
  opts: {
    edge?: Partial<Omit<EdgeConfigInput, 'paths' | 'platformDomain'>>;
    issuer?: DeepPartial<IssuerConfigInput>;
  } = {},
): Promise<IssuerStack> {
  const accountPath = join(bed.dir, 'account.pem');
  const thumbprint = jwkThumbprint(await new FileAccountKey(accountPath, true).load());
  const [httpPort, issuerPort, dynPort] = [await freePort(), await freePort(), await freePort()];

  const dynalite = await startDynalite({ port: dynPort, dir: bed.dir });
  bed.track(dynalite.process);
  const client = dynalite.client();
  await ensureTable(client, TABLE);
  client.destroy();

  const pebble = await startPebble({ dir: bed.dir, httpPort });
  bed.track(pebble.challtestsrv);
  bed.track(pebble.pebble);

  const { tls, acme, listen, ...rest } = opts.edge ?? {};
  const edge = await startEdgeStack(bed as TestBed, {
    ...rest,
    listen: { httpPort, ...listen },
    tls: {
      issuerUrl: `http://127.0.0.1:${issuerPort}`,
      issuerWaitMs: 5000,
      missTtlSeconds: 1,
      shmTtlSeconds: 1,
      ...tls,
    },
    acme: { accountThumbprint: thumbprint, ...acme },
  });

  const services: IssuerService[] = [];
  bed.onStop(async () => {
    for (const s of services) await s.stop(2000);
  });

  const issuerConfig = (name: string, redisPort: number, config?: DeepPartial<IssuerConfigInput>) =>
    merge<IssuerConfigInput>(
      {
        region: name,
        ownerId: `${name}-owner`,
        platformDomain: PLATFORM,
        listen: { host: '127.0.0.1', port: 0 },
        redis: { port: redisPort },
        table: { name: TABLE, endpoint: dynalite.endpoint, region: 'local' },
        acme: {
          cas: [{ name: 'pebble', directoryUrl: pebble.directoryUrl }],
          account: { source: 'file', path: accountPath },
          trustPem: pebble.wfeCaPem,
          pollMinMs: 50,
          pollMaxMs: 500,
        },
        dns: { provider: 'challtestsrv', url: pebble.challtestsrvUrl },
        backoff: { baseSeconds: 600 },
        renewal: { enabled: false, jitterSeconds: 0 },
      },
      config,
    );

  const start = async (name: string, config?: DeepPartial<IssuerConfigInput>, redisPort?: number) => {
    let port = redisPort;
    if (port === undefined) {
      port = await freePort();
      bed.track(await startRedisServer({ port, dir: bed.dir }));
    }
    const log = createLogger(
      { service: 'issuer', region: name, level: 'debug' },
      pino.destination({ dest: join(bed.dir, `issuer-${name}.log`), sync: true }),
    );
    const input = issuerConfig(name, port, config);
    // Delegated DNS-01 reads `_acme-challenge` CNAMEs from challtestsrv, as Pebble does.
    if (input.delegation && !input.delegation.resolvers?.length) {
      input.delegation = { ...input.delegation, resolvers: [pebble.dnsServer] };
    }
    const service = await startIssuerService(parseIssuerConfig(input), log);
    services.push(service);
    return service;
  };

  const issuer = await start('main', merge({ listen: { port: issuerPort } }, opts.issuer), edge.redisPort);
  return {
    edge,
    pebble,
    dynalite,
    dns: new ChallTestSrvDns(pebble.challtestsrvUrl),
    issuer,
    root: await pebble.root(),
    thumbprint,
    startIssuer: start,
    issuerConfig,
  };
}

/** A Redis client for another issuer's Redis (seeding its registry). */
export function redisAt(bed: Bed, port: number): { redis: Redis; keys: RedisKeys } {
  const redis = new Redis({ port, maxRetriesPerRequest: 1 });
  redis.on('error', () => {});
  bed.onStop(() => redis.disconnect());
  return { redis, keys: new RedisKeys('edge') };
}

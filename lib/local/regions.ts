import { randomBytes } from 'node:crypto';
import { chmod, mkdir } from 'node:fs/promises';
import { request } from 'node:http';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import type { EdgeConfigInput } from '../config/edge-config.ts';
import { processEnvironment } from '../config/env-contract.ts';
import { ensureTable } from '../core/table.ts';
import { FileAccountKey, jwkThumbprint } from '../sidecars/issuer/account-key.ts';
import { parseIssuerConfig } from '../sidecars/issuer/config.ts';
import { type IssuerService, startIssuerService } from '../sidecars/issuer/service.ts';
import { redisListenerEnv } from '../sidecars/redis-listener/config.ts';
import { createLogger } from '../sidecars/runtime/logger.ts';
import { sqsListenerEnv } from '../sidecars/sqs-listener/config.ts';
import { type Dynalite, startDynalite } from './dynalite.ts';
import { type LocalEdge, startEdge } from './edge-server.ts';
import { type LocalPebble, startPebble } from './pebble.ts';
import { freePort } from './ports.ts';
import { ManagedProcess } from './process.ts';
import { startRedisServer } from './redis-server.ts';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

export interface RegionSpec {
  readonly name: string;
  /** A loopback address of its own (127.0.0.2, .3, ...): every region uses the same ports. */
  readonly address: string;
}

export const DEFAULT_REGIONS: readonly RegionSpec[] = [
  { name: 'region-a', address: '127.0.0.2' },
  { name: 'region-b', address: '127.0.0.3' },
  { name: 'region-c', address: '127.0.0.4' },
];

export interface RegionPorts {
  readonly http: number;
  readonly https: number;
  readonly control: number;
  readonly redis: number;
  readonly sqsListenerHealth: number;
  readonly redisListenerHealth: number;
  /** Each region's issuer API (with `issuance`). */
  readonly issuer: number;
}

export interface LocalRegionsOptions {
  readonly dir: string;
  readonly regions?: readonly RegionSpec[];
  readonly platformDomain?: string;
  /** Same in every region; free ports by default. */
  readonly ports?: Partial<RegionPorts>;
  readonly dynalitePort?: number;
  readonly busRedisPort?: number;
  readonly tableName?: string;
  readonly redisPrefix?: string;
  /** Extra edge config for every region (cache TTLs, log level, ...). */
  readonly edge?: Partial<Omit<EdgeConfigInput, 'paths' | 'platformDomain' | 'listen' | 'redis' | 'region'>>;
  readonly logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /**
   * On-demand issuance: one Pebble shared by every region (the deployment's one CA), one ACME
   * account key, and an issuer in each region; leases in the shared table make one order per
   * domain across regions. Default: off.
   */
  readonly issuance?: boolean;
}

export interface LocalRegion {
  readonly spec: RegionSpec;
  readonly dir: string;
  readonly edge: LocalEdge;
  readonly redis: ManagedProcess;
  readonly sqsListener: ManagedProcess;
  readonly redisListener: ManagedProcess;
  /** With `issuance`: this region's issuer (its API on the region's address). */
  readonly issuer?: IssuerService;
  stop(): Promise<void>;
}

/**
 * Several "regions" side by side on loopback, each with its own nginx (the Lua edge), Redis,
 * sqs-listener and redis-listener; dynalite and the Redis bus are shared. One call starts them all.
 */
export class LocalRegions {
  readonly regions: LocalRegion[] = [];
  readonly controlToken = randomBytes(24).toString('hex');
  readonly tableName: string;
  readonly redisPrefix: string;
  readonly platformDomain: string;
  readonly keyFile: string;
  /** With `issuance`: the shared CA, and the account key every region's issuer uses. */
  pebble: LocalPebble | undefined;
  readonly accountKeyFile: string;
  accountThumbprint: string | undefined;

  private constructor(
    readonly opts: LocalRegionsOptions,
    readonly ports: RegionPorts,
    readonly dynalite: Dynalite,
    readonly busRedis: ManagedProcess,
    readonly busRedisPort: number,
  ) {
    this.tableName = opts.tableName ?? 'edge-local';
    this.redisPrefix = opts.redisPrefix ?? 'edge';
    this.platformDomain = opts.platformDomain ?? 'platform.test';
    this.keyFile = join(opts.dir, 'local-master.key');
    this.accountKeyFile = join(opts.dir, 'acme-account.pem');
  }

  static async start(opts: LocalRegionsOptions): Promise<LocalRegions> {
    await mkdir(opts.dir, { recursive: true });
    // nginx's workers run as nobody when started as root: they must reach each region's cache.
    await chmod(opts.dir, 0o755);
    const specs = opts.regions ?? DEFAULT_REGIONS;
    const first = specs[0]?.address ?? '127.0.0.2';
    const ports: RegionPorts = {
      http: opts.ports?.http ?? (await freePort(first)),
      https: opts.ports?.https ?? (await freePort(first)),
      control: opts.ports?.control ?? (await freePort(first)),
      redis: opts.ports?.redis ?? (await freePort(first)),
      sqsListenerHealth: opts.ports?.sqsListenerHealth ?? (await freePort(first)),
      redisListenerHealth: opts.ports?.redisListenerHealth ?? (await freePort(first)),
      issuer: opts.ports?.issuer ?? (await freePort(first)),
    };
    const dynalite = await startDynalite({ port: opts.dynalitePort ?? (await freePort()), dir: opts.dir });
    const busRedisPort = opts.busRedisPort ?? (await freePort());
    let busRedis: ManagedProcess;
    try {
      busRedis = await startRedisServer({ port: busRedisPort, dir: opts.dir });
    } catch (err) {
      await dynalite.process.stop();
      throw err;
    }
    const all = new LocalRegions(opts, ports, dynalite, busRedis, busRedisPort);
    try {
      const client = dynalite.client();
      await ensureTable(client, all.tableName);
      client.destroy();
      if (opts.issuance) {
        all.accountThumbprint = jwkThumbprint(await new FileAccountKey(all.accountKeyFile, true).load());
        // challtestsrv resolves every name to the first region: any region answers HTTP-01 alike.
        all.pebble = await startPebble({ dir: opts.dir, httpPort: ports.http, answerAddress: first });
      }
      for (const spec of specs) await all.startRegion(spec);
    } catch (err) {
      await all.stop();
      throw err;
    }
    return all;
  }

  region(name: string): LocalRegion {
    const r = this.regions.find((x) => x.spec.name === name);
    if (!r) throw new Error(`no local region named "${name}"`);
    return r;
  }

  /** The environment of one of a region's listeners (their contracts: lib/sidecars/*-listener/config.ts). */
  sidecarEnv(spec: RegionSpec, sidecar: 'sqs-listener' | 'redis-listener'): NodeJS.ProcessEnv {
    const common = {
      region: spec.name,
      taskId: `${spec.name}-${process.pid}-${randomBytes(3).toString('hex')}`,
      logLevel: this.opts.logLevel ?? 'info',
      redisHost: spec.address,
      redisPort: this.ports.redis,
      redisPrefix: this.redisPrefix,
      tableName: this.tableName,
      dynamodbEndpoint: this.dynalite.endpoint,
      keySource: 'file' as const,
      localKeyFile: this.keyFile,
      bus: 'redis' as const,
      busRedisUrl: `redis://127.0.0.1:${this.busRedisPort}`,
      healthHost: spec.address,
    };
    const own =
      sidecar === 'sqs-listener'
        ? processEnvironment(sqsListenerEnv, {
            ...common,
            healthPort: this.ports.sqsListenerHealth,
            edgeControlUrl: `http://${spec.address}:${this.ports.control}`,
            edgeControlToken: this.controlToken,
          })
        : processEnvironment(redisListenerEnv, { ...common, healthPort: this.ports.redisListenerHealth });
    return { ...withoutEdgeVars(process.env), ...own };
  }

  /** Starts one region (also used to add a fresh task later): Redis, edge, then the sidecars. */
  async startRegion(spec: RegionSpec): Promise<LocalRegion> {
    const dir = join(this.opts.dir, spec.name);
    await mkdir(dir, { recursive: true });
    const started: ManagedProcess[] = [];
    try {
      const redis = await startRedisServer({ port: this.ports.redis, host: spec.address, dir });
      started.push(redis);
      const issuer = this.pebble ? await this.startIssuer(spec, dir, this.pebble) : undefined;
      const issuing = issuer
        ? {
            tls: { ...this.opts.edge?.tls, issuerUrl: issuer.url, issuerWaitMs: 5000 },
            acme: { ...this.opts.edge?.acme, accountThumbprint: this.accountThumbprint },
          }
        : {};
      const edge = await startEdge({
        dir,
        controlToken: this.controlToken,
        config: {
          ...this.opts.edge,
          region: spec.name,
          platformDomain: this.platformDomain,
          listen: {
            address: spec.address,
            controlAddress: spec.address,
            httpPort: this.ports.http,
            httpsPort: this.ports.https,
            controlPort: this.ports.control,
          },
          redis: { host: spec.address, port: this.ports.redis, prefix: this.redisPrefix },
          nginx: { workerProcesses: 1, ...this.opts.edge?.nginx },
          ...issuing,
        },
      }).catch(async (err) => {
        await issuer?.stop(1000);
        throw err;
      });
      started.push(edge.process);
      const sidecar = (name: 'sqs-listener' | 'redis-listener', bin: string, healthPort: number) =>
        ManagedProcess.start({
          name: `${name}:${spec.name}`,
          command: process.execPath,
          args: ['--import', 'tsx', join(ROOT, bin)],
          cwd: ROOT,
          env: this.sidecarEnv(spec, name),
          logFile: join(dir, `${name}.log`),
          readyTimeoutMs: 90_000,
          ready: async () => (await getStatus(spec.address, healthPort, '/readyz')) === 200,
        });
      // Both at once: startup is mostly TypeScript loading.
      const [sqsListener, redisListener] = await Promise.all([
        sidecar('sqs-listener', 'bin/sqs-listener.ts', this.ports.sqsListenerHealth).then((p) => {
          started.push(p);
          return p;
        }),
        sidecar('redis-listener', 'bin/redis-listener.ts', this.ports.redisListenerHealth).then((p) => {
          started.push(p);
          return p;
        }),
      ]);
      const region: LocalRegion = {
        spec,
        dir,
        edge,
        redis,
        sqsListener,
        redisListener,
        issuer,
        stop: async () => {
          await Promise.all([sqsListener.stop(), redisListener.stop(), issuer?.stop(2000)]);
          await edge.process.stop();
          await redis.stop();
          this.regions.splice(this.regions.indexOf(region), 1);
        },
      };
      this.regions.push(region);
      return region;
    } catch (err) {
      await Promise.all(started.reverse().map((p) => p.stop().catch(() => {})));
      throw err;
    }
  }

  /** A region's issuer, in this process: the shared Pebble, account key and table. */
  private async startIssuer(spec: RegionSpec, dir: string, pebble: LocalPebble): Promise<IssuerService> {
    return startIssuerService(
      parseIssuerConfig({
        region: spec.name,
        platformDomain: this.platformDomain,
        listen: { host: spec.address, port: this.ports.issuer },
        redis: { host: spec.address, port: this.ports.redis, prefix: this.redisPrefix },
        table: { name: this.tableName, endpoint: this.dynalite.endpoint, region: 'local' },
        acme: {
          cas: [{ name: 'pebble', directoryUrl: pebble.directoryUrl }],
          account: { source: 'file', path: this.accountKeyFile },
          trustPem: pebble.wfeCaPem,
        },
        dns: { provider: 'challtestsrv', url: pebble.challtestsrvUrl },
        renewal: { enabled: false },
      }),
      createLogger(
        { service: 'issuer', region: spec.name, level: this.opts.logLevel ?? 'info' },
        pino.destination({ dest: join(dir, 'issuer.log'), sync: true }),
      ),
    );
  }

  async stop(): Promise<void> {
    await Promise.all([...this.regions].map((r) => r.stop().catch(() => {})));
    await this.pebble?.stop().catch(() => {});
    await this.busRedis.stop().catch(() => {});
    await this.dynalite.process.stop().catch(() => {});
  }
}

/** The parent's own EDGE_* settings (a test run's ports, say) are not the sidecars'. */
function withoutEdgeVars(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !k.startsWith('EDGE_')));
}

function getStatus(host: string, port: number, path: string): Promise<number> {
  return new Promise((resolveStatus, reject) => {
    const req = request({ host, port, path, timeout: 1000 }, (res) => {
      res.resume();
      resolveStatus(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

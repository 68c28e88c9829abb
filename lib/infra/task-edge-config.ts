import { nginxSizing } from '../config/deployment-config.ts';
import { type EdgeConfig, type EdgeConfigInput, parseEdgeConfig } from '../config/edge-config.ts';

/** Where things live inside the task; the Dockerfiles and the volumes agree with these paths. */
export const TASK_PATHS = {
  /** The project's Lua, `edge/*.lua` below it (edge-image/Dockerfile.edge copies it here). */
  luaDir: '/opt/edge/lua',
  /** Rendered nginx.conf and the fallback certificate (volume written by the render container). */
  confDir: '/etc/edge',
  /** nginx prefix: pid, temp files, lua-resty-auto-ssl's working directory (volume). */
  runDir: '/var/run/edge',
  /** proxy_cache_path (volume on the task's ephemeral storage). */
  cacheDir: '/var/cache/edge',
} as const;

/** Loopback ports of the task's processes (they share one network namespace). */
export const TASK_PORTS = {
  redis: 6379,
  control: 9145,
  /** The issuer's API and its /healthz. */
  issuer: 9180,
  sqsListenerHealth: 9181,
  redisListenerHealth: 9182,
} as const;

/** The uid:gid the edge runs as; the render container hands the volumes to it. */
export const EDGE_UID = '65534:65534';

/** The Amazon-provided DNS resolver, reachable from every VPC. */
const VPC_RESOLVER = '169.254.169.253';

export interface TaskEdgeConfigOptions {
  readonly region: string;
  readonly platformDomain: string;
  readonly engine: 'native' | 'auto-ssl';
  readonly redisPrefix: string;
  /** The VPC CIDR: the NLB's addresses, trusted to send proxy protocol headers. */
  readonly vpcCidr: string;
  readonly cacheMaxSizeGiB: number;
  /** Fargate CPU units of the task: one nginx worker per vCPU. */
  readonly cpuUnits: number;
  /** The scale-out target: nginx's connection limits leave headroom above it. */
  readonly connectionsPerTask: number;
  /**
   * Offer X25519MLKEM768 (needs OpenSSL 3.5: the default trixie edge image has it).
   * @default true
   */
  readonly postQuantum?: boolean;
  /**
   * Compress with brotli too (the trixie edge image loads its module; OpenResty's has none).
   * @default true
   */
  readonly brotli?: boolean;
}

/** The EdgeConfig of the `edge` container, validated here so that synth fails on a bad value. */
export function taskEdgeConfig(o: TaskEdgeConfigOptions): EdgeConfig {
  const input: EdgeConfigInput = {
    region: o.region,
    platformDomain: o.platformDomain,
    nginx: (({ workerProcesses, workerConnections, workerRlimitNofile }) => ({
      workerProcesses,
      workerConnections,
      workerRlimitNofile,
    }))(nginxSizing(o.cpuUnits, o.connectionsPerTask)),
    listen: { proxyProtocol: true, trustedProxies: [o.vpcCidr], controlAddress: '127.0.0.1' },
    paths: {
      runDir: TASK_PATHS.runDir,
      luaDir: TASK_PATHS.luaDir,
      cacheDir: TASK_PATHS.cacheDir,
      fallbackCert: `${TASK_PATHS.confDir}/fallback.crt`,
      fallbackKey: `${TASK_PATHS.confDir}/fallback.key`,
      errorLog: '/dev/stderr',
      accessLog: '/dev/stdout',
    },
    cache: { maxSize: `${o.cacheMaxSizeGiB}g` },
    redis: { host: '127.0.0.1', port: TASK_PORTS.redis, prefix: o.redisPrefix },
    tls: {
      engine: o.engine,
      postQuantum: o.postQuantum ?? true,
      ...(o.engine === 'native' ? { issuerUrl: `http://127.0.0.1:${TASK_PORTS.issuer}` } : {}),
    },
    routing: { resolvers: [VPC_RESOLVER] },
    compression: { brotli: o.brotli ?? true },
    // The sidecars' health ports: never an origin, on loopback or the task's own address.
    origins: { deniedPorts: [TASK_PORTS.sqsListenerHealth, TASK_PORTS.redisListenerHealth] },
  };
  return parseEdgeConfig(input);
}

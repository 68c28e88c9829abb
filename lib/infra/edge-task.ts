import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import type { EdgeConfig } from '../config/edge-config.ts';
import type { EnvValues } from '../config/env-contract.ts';
import { TASK_REDIS_FLAGS } from '../core/redis-server-flags.ts';
import { edgeConfigEnv, edgeEnv } from '../edge/environment.ts';
import { type IssuerEnvVars, issuerEnv } from '../sidecars/issuer/config.ts';
import type { ListenerEnvVars } from '../sidecars/listener-runtime/config.ts';
import { redisListenerEnv } from '../sidecars/redis-listener/config.ts';
import { sqsListenerEnv } from '../sidecars/sqs-listener/config.ts';
import { type ContainerEnvironment, containerEnvironment } from './container-environment.ts';
import { EDGE_PORTS } from './edge-load-balancer.ts';
import { EDGE_UID, TASK_PATHS, TASK_PORTS } from './task-edge-config.ts';

/** The long-running containers; each one has a health check. */
export const LONG_RUNNING_CONTAINERS = ['edge', 'redis', 'sqs-listener', 'redis-listener', 'issuer'] as const;
export type ContainerName = (typeof LONG_RUNNING_CONTAINERS)[number] | 'edge-config';

/** The official Redis image, BSD-licensed 7.2 line. */
const REDIS_IMAGE = 'public.ecr.aws/docker/library/redis:7.2-alpine';
/** The sidecar image's non-root user (node:20-bookworm-slim's `node`). */
const SIDECAR_UID = '1000:1000';

export interface EdgeTaskProps {
  /** edge-image/Dockerfile.edge: OpenResty with the project's Lua (and lua-resty-auto-ssl). */
  readonly edgeImage: ecs.ContainerImage;
  /** edge-image/Dockerfile.sidecars: one Node image, several entry points. */
  readonly sidecarImage: ecs.ContainerImage;
  /** Fargate CPU units. */
  readonly cpu: number;
  readonly memoryMiB: number;
  /** Ephemeral storage of the task; the proxy cache lives on it. */
  readonly ephemeralStorageGiB: number;
  /** The edge's config, rendered into nginx.conf by the `edge-config` container at start. */
  readonly edgeConfig: EdgeConfig;
  /**
   * The deployment's settings of both listeners, by config field of their contract
   * (lib/sidecars/listener-runtime/config.ts); the task fills in its own addresses and ports.
   */
  readonly listenerSettings: Omit<EnvValues<ListenerEnvVars, ecs.Secret>, TaskOwnedListenerField>;
  /** The deployment's settings of the issuer, by config field of `issuerEnv` (lib/sidecars/issuer/config.ts). */
  readonly issuerSettings: Omit<EnvValues<IssuerEnvVars, ecs.Secret>, TaskOwnedIssuerField>;
  /** The deployment's ACME account key (PEM). */
  readonly acmeAccountKey: secretsmanager.ISecret;
  /** Bearer token of the edge's control listener (purge). */
  readonly controlToken: secretsmanager.ISecret;
  /**
   * The region's session ticket secret: `edge-config` derives the ticket keys from it, the same in
   * every task of the region (lib/edge/ticket-keys.ts). Only that init container receives it.
   */
  readonly ticketSecret: secretsmanager.ISecret;
  readonly logRetention: logs.RetentionDays;
}

/** Fields the task itself sets: loopback addresses and ports of its own processes. */
type TaskOwnedListenerField = 'redisHost' | 'redisPort' | 'healthHost' | 'healthPort';
type TaskOwnedIssuerField = 'redisHost' | 'redisPort' | 'listenHost' | 'listenPort';

/**
 * The edge task: containers sharing one network namespace. `edge-config` renders nginx.conf and
 * the fallback certificate into a volume and exits; `redis` holds the task's hot state on
 * loopback; the sidecars fill and replicate it; `edge` starts once Redis is healthy and the
 * sqs-listener has bootstrapped it, so a new task never serves an empty Redis.
 */
export class EdgeTask extends Construct {
  readonly taskDefinition: ecs.FargateTaskDefinition;
  readonly containers: Partial<Record<ContainerName, ecs.ContainerDefinition>> = {};
  readonly logGroups: Partial<Record<ContainerName, logs.LogGroup>> = {};

  constructor(scope: Construct, id: string, props: EdgeTaskProps) {
    super(scope, id);
    const engine = props.edgeConfig.tls.engine;
    this.taskDefinition = new ecs.FargateTaskDefinition(this, 'TaskDefinition', {
      cpu: props.cpu,
      memoryLimitMiB: props.memoryMiB,
      ephemeralStorageGiB: props.ephemeralStorageGiB,
      runtimePlatform: {
        cpuArchitecture: ecs.CpuArchitecture.X86_64,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
    });
    // Scratch volumes on the task's ephemeral storage; the root filesystems stay read-only.
    const volumes = ['edge-conf', 'edge-run', 'edge-cache', 'edge-tmp'] as const;
    for (const name of volumes) this.taskDefinition.addVolume({ name });
    const mount = (
      c: ecs.ContainerDefinition,
      sourceVolume: string,
      containerPath: string,
      readOnly = false,
    ) => c.addMountPoints({ sourceVolume, containerPath, readOnly });

    const logging = (name: ContainerName) => {
      const logGroup = new logs.LogGroup(this, `Logs-${name}`, {
        retention: props.logRetention,
        removalPolicy: RemovalPolicy.DESTROY,
      });
      this.logGroups[name] = logGroup;
      return ecs.LogDrivers.awsLogs({
        logGroup,
        streamPrefix: name,
        mode: ecs.AwsLogDriverMode.NON_BLOCKING,
      });
    };
    const add = (name: ContainerName, options: Omit<ecs.ContainerDefinitionOptions, 'logging'>) => {
      const c = this.taskDefinition.addContainer(name, {
        containerName: name,
        logging: logging(name),
        ...options,
      });
      this.containers[name] = c;
      return c;
    };

    // Runs as root only long enough to hand the volumes to the edge's unprivileged user.
    const render = add('edge-config', {
      image: props.sidecarImage,
      essential: false,
      command: ['node', 'dist/bin/render-edge-config.js'],
      readonlyRootFilesystem: true,
      user: '0:0',
      ...containerEnvironment(edgeConfigEnv, {
        edgeConfig: JSON.stringify(props.edgeConfig),
        confDir: TASK_PATHS.confDir,
        filesOwner: EDGE_UID,
        acmeAccountKey: ecs.Secret.fromSecretsManager(props.acmeAccountKey),
        ticketSecret: ecs.Secret.fromSecretsManager(props.ticketSecret),
      }),
      memoryReservationMiB: 64,
    });
    mount(render, 'edge-conf', TASK_PATHS.confDir);
    mount(render, 'edge-run', TASK_PATHS.runDir);
    mount(render, 'edge-cache', TASK_PATHS.cacheDir);

    const redisMemoryMiB = Math.floor(props.memoryMiB / 4);
    const redis = add('redis', {
      image: ecs.ContainerImage.fromRegistry(REDIS_IMAGE),
      essential: true,
      user: '999:1000',
      readonlyRootFilesystem: true,
      command: [
        'redis-server',
        '--bind',
        '127.0.0.1',
        '--port',
        String(TASK_PORTS.redis),
        '--protected-mode',
        'yes',
        ...TASK_REDIS_FLAGS,
        '--maxmemory',
        `${Math.floor(redisMemoryMiB * 0.9)}mb`,
        // Certificates must never be evicted silently: fail writes instead, and alarm on it.
        '--maxmemory-policy',
        'noeviction',
      ],
      healthCheck: shellCheck(`redis-cli -h 127.0.0.1 -p ${TASK_PORTS.redis} ping | grep -q PONG`, 10),
      memoryReservationMiB: redisMemoryMiB,
    });

    const controlToken = ecs.Secret.fromSecretsManager(props.controlToken);
    const sidecar = (
      name: 'sqs-listener' | 'redis-listener' | 'issuer',
      env: ContainerEnvironment,
      healthCheck: ecs.HealthCheck,
    ) =>
      add(name, {
        image: props.sidecarImage,
        essential: true,
        command: ['node', `dist/bin/${name}.js`],
        user: SIDECAR_UID,
        readonlyRootFilesystem: true,
        ...env,
        healthCheck,
        memoryReservationMiB: 128,
        // A crashed sidecar restarts in place instead of taking the whole task down.
        enableRestartPolicy: true,
        restartAttemptPeriod: Duration.seconds(60),
      });

    // Its health check is liveness: /healthz turns 200 after the first bootstrap from the table (the
    // edge's start gate) and stays 200 while the process runs, so a bus, DynamoDB or KMS outage never
    // marks every task unhealthy at once. Readiness (/readyz: Redis bootstrapped, bus delivering,
    // table reachable) goes to metrics, logs and an alarm.
    const taskRedis = { redisHost: '127.0.0.1', redisPort: TASK_PORTS.redis } as const;
    const sqsListener = sidecar(
      'sqs-listener',
      containerEnvironment(sqsListenerEnv, {
        ...props.listenerSettings,
        ...taskRedis,
        healthPort: TASK_PORTS.sqsListenerHealth,
        edgeControlUrl: `http://127.0.0.1:${TASK_PORTS.control}`,
        edgeControlToken: controlToken,
      }),
      httpCheck(TASK_PORTS.sqsListenerHealth, '/healthz', 240),
    );
    const redisListener = sidecar(
      'redis-listener',
      containerEnvironment(redisListenerEnv, {
        ...props.listenerSettings,
        ...taskRedis,
        healthPort: TASK_PORTS.redisListenerHealth,
      }),
      httpCheck(TASK_PORTS.redisListenerHealth, '/healthz', 30),
    );
    // The ACME client of the native engine; with auto-ssl, lua-resty-auto-ssl issues inside nginx.
    // It reads the account key from Secrets Manager itself (EDGE_ACME_ACCOUNT_SECRET_ID).
    const issuer =
      engine === 'native'
        ? sidecar(
            'issuer',
            containerEnvironment(issuerEnv, {
              ...props.issuerSettings,
              ...taskRedis,
              listenHost: '127.0.0.1',
              listenPort: TASK_PORTS.issuer,
            }),
            httpCheck(TASK_PORTS.issuer, '/healthz', 30),
          )
        : undefined;
    for (const c of [sqsListener, redisListener, issuer]) {
      c?.addContainerDependencies({ container: redis, condition: ecs.ContainerDependencyCondition.HEALTHY });
    }

    const edge = add('edge', {
      image: props.edgeImage,
      essential: true,
      user: EDGE_UID,
      readonlyRootFilesystem: true,
      ...containerEnvironment(edgeEnv, { tlsEngine: engine, controlToken }),
      portMappings: Object.values(EDGE_PORTS).map((containerPort) => ({
        containerPort,
        protocol: ecs.Protocol.TCP,
      })),
      // Lets the unprivileged nginx bind 80 and 443 (the task's own network namespace only).
      systemControls: [{ namespace: 'net.ipv4.ip_unprivileged_port_start', value: '0' }],
      healthCheck: shellCheck(`curl -fsS -o /dev/null http://127.0.0.1:${TASK_PORTS.control}/healthz`, 15),
      // The image's STOPSIGNAL is SIGQUIT: nginx drains for up to worker_shutdown_timeout, and the
      // agent waits that long plus a margin before SIGKILL (Fargate allows at most 120 s).
      stopTimeout: Duration.seconds(Math.min(120, props.edgeConfig.nginx.shutdownTimeoutSeconds + 10)),
      // worker_rlimit_nofile cannot exceed the hard limit for an unprivileged nginx.
      ...(props.edgeConfig.nginx.workerRlimitNofile
        ? {
            ulimits: [
              {
                name: ecs.UlimitName.NOFILE,
                softLimit: props.edgeConfig.nginx.workerRlimitNofile,
                hardLimit: props.edgeConfig.nginx.workerRlimitNofile,
              },
            ],
          }
        : {}),
    });
    mount(edge, 'edge-conf', TASK_PATHS.confDir, true);
    mount(edge, 'edge-run', TASK_PATHS.runDir);
    mount(edge, 'edge-cache', TASK_PATHS.cacheDir);
    mount(edge, 'edge-tmp', '/tmp');
    edge.addContainerDependencies(
      { container: render, condition: ecs.ContainerDependencyCondition.SUCCESS },
      { container: redis, condition: ecs.ContainerDependencyCondition.HEALTHY },
      { container: sqsListener, condition: ecs.ContainerDependencyCondition.HEALTHY },
    );
  }
}

function shellCheck(command: string, startPeriodSeconds: number): ecs.HealthCheck {
  return {
    command: ['CMD-SHELL', command],
    interval: Duration.seconds(10),
    timeout: Duration.seconds(5),
    retries: 3,
    startPeriod: Duration.seconds(startPeriodSeconds),
  };
}

/** The sidecar image has no curl; Node's fetch does the same job. */
function httpCheck(port: number, path: string, startPeriodSeconds: number): ecs.HealthCheck {
  const script = `fetch('http://127.0.0.1:${port}${path}').then((r)=>process.exit(r.ok?0:1),()=>process.exit(1))`;
  return {
    command: ['CMD', 'node', '-e', script],
    interval: Duration.seconds(15),
    timeout: Duration.seconds(5),
    retries: 3,
    startPeriod: Duration.seconds(startPeriodSeconds),
  };
}

import { RedisKeys } from '../../core/redis-format.ts';
import { Replica } from '../listener-runtime/replica.ts';
import { buildBus, buildStore, taskRedis } from '../listener-runtime/wiring.ts';
import { HealthServer, send } from '../runtime/health.ts';
import { onShutdown } from '../runtime/shutdown.ts';
import { startSidecar } from '../runtime/start.ts';
import { sqsListenerEnv } from './config.ts';
import { EdgeControl } from './edge-control.ts';
import { listenerMetrics } from './metrics.ts';
import { SqsListener } from './service.ts';

/** The sqs-listener process: config once, clients, health endpoint, graceful stop. */
export async function main(): Promise<void> {
  const { config, log } = startSidecar(sqsListenerEnv);
  let listener: SqsListener | undefined;
  const health = new HealthServer(config.healthHost, config.healthPort, (req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics' || !listener) return false;
    send(res, 200, listenerMetrics(listener), 'text/plain; version=0.0.4');
    return true;
  });
  // Liveness gates the edge's start: it turns healthy after the first bootstrap and stays so
  // (the process keeps working when its dependencies come back); readiness is /readyz.
  health.setLive(false, { reason: 'first bootstrap pending' });
  await health.start();
  const { store, close: closeStore } = await buildStore(config);
  const redis = taskRedis(config, log);
  await redis.connect();
  const edge = new EdgeControl(config.edgeControlUrl, config.edgeControlToken);
  listener = new SqsListener({
    bus: buildBus(config, log),
    store,
    redis,
    replica: new Replica(redis, new RedisKeys(config.redisPrefix)),
    edge,
    log,
    bootstrap: { segments: config.bootstrapSegments, pageSize: config.bootstrapPageSize },
    orphanSweepMs: config.orphanSweepMs,
    onReady: (r, reason) => {
      health.setLive(true);
      log.info({ reason, ...r }, 'task redis bootstrapped');
    },
    onReadiness: (r) => health.setReady(r.ready, { ...r }),
  });
  const running = listener;
  onShutdown({
    log,
    health,
    deadlineMs: config.shutdownDeadlineMs,
    stop: async () => {
      await running.stop();
      edge.close();
      await redis.quit().catch(() => redis.disconnect());
      closeStore();
    },
  });
  await running.start();
  log.info({ taskId: config.taskId }, 'ready');
}

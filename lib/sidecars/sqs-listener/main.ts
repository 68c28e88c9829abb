import { RedisKeys } from '../../core/redis-format.ts';
import { Replica } from '../listener-runtime/replica.ts';
import { buildBus, buildStore, taskRedis } from '../listener-runtime/wiring.ts';
import { HealthServer } from '../runtime/health.ts';
import { onShutdown } from '../runtime/shutdown.ts';
import { startSidecar } from '../runtime/start.ts';
import { sqsListenerEnv } from './config.ts';
import { EdgeControl } from './edge-control.ts';
import { SqsListener } from './service.ts';

/** The sqs-listener process: config once, clients, health endpoint, graceful stop. */
export async function main(): Promise<void> {
  const { config, log } = startSidecar(sqsListenerEnv);
  const health = new HealthServer(config.healthHost, config.healthPort);
  await health.start();
  const { store, close: closeStore } = await buildStore(config);
  const redis = taskRedis(config, log);
  await redis.connect();
  const edge = new EdgeControl(config.edgeControlUrl, config.edgeControlToken);
  const listener = new SqsListener({
    bus: buildBus(config, log),
    store,
    redis,
    replica: new Replica(redis, new RedisKeys(config.redisPrefix)),
    edge,
    log,
    bootstrap: { segments: config.bootstrapSegments, pageSize: config.bootstrapPageSize },
    orphanSweepMs: config.orphanSweepMs,
    onReady: (r) => health.setReady(true, { bootstrap: r }),
  });
  onShutdown({
    log,
    health,
    deadlineMs: config.shutdownDeadlineMs,
    stop: async () => {
      await listener.stop();
      edge.close();
      await redis.quit().catch(() => redis.disconnect());
      closeStore();
    },
  });
  await listener.start();
  log.info({ taskId: config.taskId }, 'ready');
}

import { RedisKeys } from '../../core/redis-format.ts';
import { HealthServer } from '../listener-runtime/health.ts';
import { createLogger } from '../listener-runtime/log.ts';
import { Replica } from '../listener-runtime/replica.ts';
import { onShutdown } from '../listener-runtime/shutdown.ts';
import { buildBus, buildStore, taskRedis } from '../listener-runtime/wiring.ts';
import { loadSqsListenerConfig } from './config.ts';
import { EdgeControl } from './edge-control.ts';
import { SqsListener } from './service.ts';

/** The sqs-listener process: config once, clients, health endpoint, graceful stop. */
export async function main(): Promise<void> {
  const config = loadSqsListenerConfig();
  const log = createLogger('sqs-listener', config.region, config.logLevel);
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
  onShutdown(
    log,
    async () => {
      health.setReady(false, { reason: 'shutting down' });
      await listener.stop();
      edge.close();
      await redis.quit().catch(() => redis.disconnect());
      closeStore();
      await health.stop();
    },
    config.shutdownDeadlineMs,
  );
  await listener.start();
  log.info({ taskId: config.taskId }, 'ready');
}

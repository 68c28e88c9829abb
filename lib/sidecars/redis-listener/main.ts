import { RedisKeys } from '../../core/redis-format.ts';
import { Replica } from '../listener-runtime/replica.ts';
import { buildBus, buildStore, taskRedis } from '../listener-runtime/wiring.ts';
import { HealthServer } from '../runtime/health.ts';
import { onShutdown } from '../runtime/shutdown.ts';
import { startSidecar } from '../runtime/start.ts';
import { redisListenerEnv } from './config.ts';
import { RedisListener } from './service.ts';

/** The redis-listener process: config once, clients, health endpoint, graceful stop. */
export async function main(): Promise<void> {
  const { config, log } = startSidecar(redisListenerEnv);
  const health = new HealthServer(config.healthHost, config.healthPort);
  await health.start();
  const { store, close: closeStore } = await buildStore(config);
  const redis = taskRedis(config, log);
  const subscriber = taskRedis(config, log);
  await Promise.all([redis.connect(), subscriber.connect()]);
  // Publishing only: this process never opens a subscription of its own.
  const bus = buildBus({ ...config, taskId: `${config.taskId}-pub` }, log);
  const listener = new RedisListener({
    redis,
    subscriber,
    replica: new Replica(redis, new RedisKeys(config.redisPrefix)),
    store,
    publisher: bus,
    log,
    concurrency: config.concurrency,
  });
  onShutdown({
    log,
    health,
    deadlineMs: config.shutdownDeadlineMs,
    stop: async () => {
      await listener.stop();
      await bus.close({ keepSubscription: true });
      subscriber.disconnect();
      await redis.quit().catch(() => redis.disconnect());
      closeStore();
    },
  });
  await listener.start();
  health.setReady(true);
  log.info({ taskId: config.taskId }, 'ready');
}

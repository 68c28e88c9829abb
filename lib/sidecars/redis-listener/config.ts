import { defineEnvContract, env } from '../../config/env-contract.ts';
import { listenerChecks, listenerVars, shutdownDeadline } from '../listener-runtime/config.ts';
import { int } from '../runtime/env-schemas.ts';

/** The redis-listener's environment contract (lib/infra builds its container's environment from it). */
export const redisListenerEnv = defineEnvContract(
  'redis-listener',
  {
    ...listenerVars,
    concurrency: env.optional(
      'EDGE_PERSIST_CONCURRENCY',
      int(1).max(64).default(4),
      'Certificates persisted and announced at once.',
    ),
    shutdownDeadlineMs: shutdownDeadline(10_000),
  },
  listenerChecks,
);

export type RedisListenerConfig = ReturnType<typeof redisListenerEnv.parse>;

export function loadRedisListenerConfig(e: NodeJS.ProcessEnv = process.env): RedisListenerConfig {
  return redisListenerEnv.parse(e);
}

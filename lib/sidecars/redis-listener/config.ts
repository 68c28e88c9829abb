import { z } from 'zod';
import { commonConfigSchema, envInput, parseConfig } from '../listener-runtime/config.ts';

export const redisListenerConfigSchema = commonConfigSchema.extend({
  /** Certificates processed at once. */
  concurrency: z.coerce.number().int().min(1).max(64).default(4),
  shutdownDeadlineMs: z.coerce.number().int().min(1000).default(10_000),
});

export type RedisListenerConfig = Readonly<z.output<typeof redisListenerConfigSchema>>;

/** Reads `REDIS_LISTENER_*` (or the plain name) from the environment. */
export function loadRedisListenerConfig(env: NodeJS.ProcessEnv = process.env): RedisListenerConfig {
  return parseConfig(redisListenerConfigSchema, envInput(env, 'REDIS_LISTENER_'));
}

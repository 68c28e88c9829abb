import { z } from 'zod';
import { commonConfigSchema, envInput, parseConfig } from '../listener-runtime/config.ts';

export const sqsListenerConfigSchema = commonConfigSchema.extend({
  /** The edge's control listener, e.g. http://127.0.0.1:9145 (EDGE_CONTROL_URL or CONTROL_URL). */
  edgeControlUrl: z.url(),
  /** The edge's control token (EDGE_CONTROL_TOKEN); at least 32 characters. */
  edgeControlToken: z.string().min(32),
  bootstrapSegments: z.coerce.number().int().min(1).max(64).default(8),
  bootstrapPageSize: z.coerce.number().int().min(10).max(1000).default(500),
  /** How often other tasks' stale subscriptions are swept; 0 disables. */
  orphanSweepMs: z.coerce.number().int().min(0).default(300_000),
  shutdownDeadlineMs: z.coerce.number().int().min(1000).default(20_000),
});

export type SqsListenerConfig = Readonly<z.output<typeof sqsListenerConfigSchema>>;

/** Reads `SQS_LISTENER_*` (or the plain name) from the environment. */
export function loadSqsListenerConfig(env: NodeJS.ProcessEnv = process.env): SqsListenerConfig {
  const input = envInput(env, 'SQS_LISTENER_');
  // The task definition (lib/infra) names it CONTROL_URL; both are accepted.
  if (!input.edgeControlUrl && input.controlUrl) input.edgeControlUrl = input.controlUrl;
  return parseConfig(sqsListenerConfigSchema, input);
}

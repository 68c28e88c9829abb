import { z } from 'zod';
import { defineEnvContract, env } from '../../config/env-contract.ts';
import { listenerChecks, listenerVars, shutdownDeadline } from '../listener-runtime/config.ts';
import { int } from '../runtime/env-schemas.ts';

/** The sqs-listener's environment contract (lib/infra builds its container's environment from it). */
export const sqsListenerEnv = defineEnvContract(
  'sqs-listener',
  {
    ...listenerVars,
    edgeControlUrl: env.required(
      'EDGE_CONTROL_URL',
      z.url(),
      "The edge's control listener, e.g. http://127.0.0.1:9145.",
    ),
    edgeControlToken: env.secret(
      'EDGE_CONTROL_TOKEN',
      z.string().min(32, 'at least 32 characters'),
      true,
      "The edge's control token.",
    ),
    bootstrapSegments: env.optional(
      'EDGE_BOOTSTRAP_SEGMENTS',
      int(1).max(64).default(8),
      'Parallel table scan segments when bootstrapping Redis.',
    ),
    bootstrapPageSize: env.optional(
      'EDGE_BOOTSTRAP_PAGE_SIZE',
      int(10).max(1000).default(500),
      'Items per scan page when bootstrapping.',
    ),
    orphanSweepMs: env.optional(
      'EDGE_ORPHAN_SWEEP_MS',
      int(0).default(300_000),
      "How often other tasks' stale subscriptions are swept; 0 disables.",
    ),
    shutdownDeadlineMs: shutdownDeadline(20_000),
  },
  listenerChecks,
);

export type SqsListenerConfig = ReturnType<typeof sqsListenerEnv.parse>;

export function loadSqsListenerConfig(e: NodeJS.ProcessEnv = process.env): SqsListenerConfig {
  return sqsListenerEnv.parse(e);
}

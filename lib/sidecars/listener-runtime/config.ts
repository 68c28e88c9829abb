import { hostname } from 'node:os';
import { z } from 'zod';
import { type ConfigOf, type EnvCheck, env } from '../../config/env-contract.ts';
import { int, logLevel, port, redisPrefix, region } from '../runtime/env-schemas.ts';

/** The variables both listeners read (each listener's contract adds its own). */
export const listenerVars = {
  region: env.optional('EDGE_REGION', region.default('local'), 'The region this task runs in.'),
  taskId: env.optional(
    'EDGE_TASK_ID',
    z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,48}$/)
      .default(
        () =>
          `${hostname()
            .replace(/[^A-Za-z0-9_-]/g, '-')
            .slice(0, 30)}-${process.pid}`,
      ),
    'Names this task (its queue, its consumer group); default host name and pid.',
  ),
  logLevel: env.optional('EDGE_LOG_LEVEL', logLevel, 'debug, info, warn or error.'),
  redisHost: env.optional('EDGE_REDIS_HOST', z.string().min(1).default('127.0.0.1'), "The task's Redis."),
  redisPort: env.optional('EDGE_REDIS_PORT', port.default(6379), "The task's Redis port."),
  redisPrefix: env.optional('EDGE_REDIS_PREFIX', redisPrefix.default('edge'), 'Prefix of every Redis key.'),
  tableName: env.required('EDGE_TABLE_NAME', z.string().min(3), 'The DynamoDB table (its replica here).'),
  dynamodbEndpoint: env.optional(
    'EDGE_DYNAMODB_ENDPOINT',
    z.url().optional(),
    'dynalite or DynamoDB Local; unset on AWS.',
  ),
  keySource: env.optional(
    'EDGE_KEY_SOURCE',
    z.enum(['kms', 'file']).default('file'),
    'Where data keys for private keys come from.',
  ),
  kmsKeyId: env.optional(
    'EDGE_KMS_KEY_ID',
    z.string().min(1).optional(),
    'The KMS key (with EDGE_KEY_SOURCE=kms).',
  ),
  localKeyFile: env.optional(
    'EDGE_LOCAL_KEY_FILE',
    z.string().min(1).optional(),
    'The local master key file (with EDGE_KEY_SOURCE=file).',
  ),
  bus: env.optional('EDGE_BUS', z.enum(['redis', 'aws']).default('redis'), 'The event bus adapter.'),
  busRedisUrl: env.optional(
    'EDGE_BUS_REDIS_URL',
    z.string().startsWith('redis://').default('redis://127.0.0.1:6379'),
    'The Redis of the Redis Streams bus (EDGE_BUS=redis).',
  ),
  busStream: env.optional(
    'EDGE_BUS_STREAM',
    z.string().min(1).default('edge:events'),
    'The stream (EDGE_BUS=redis).',
  ),
  snsTopicArn: env.optional(
    'EDGE_SNS_TOPIC_ARN',
    z.string().startsWith('arn:').optional(),
    'The control topic (EDGE_BUS=aws).',
  ),
  queueNamePrefix: env.optional(
    'EDGE_QUEUE_NAME_PREFIX',
    z.string().min(1).default('edge-task-'),
    "Prefix of each task's queue (EDGE_BUS=aws); the IAM policy is scoped to it.",
  ),
  dlqUrl: env.optional('EDGE_DLQ_URL', z.url().optional(), 'The regional dead-letter queue (EDGE_BUS=aws).'),
  dlqArn: env.optional('EDGE_DLQ_ARN', z.string().startsWith('arn:').optional(), 'Its ARN (EDGE_BUS=aws).'),
  healthHost: env.optional(
    'EDGE_HEALTH_HOST',
    z.string().min(1).default('127.0.0.1'),
    '/healthz and /readyz address.',
  ),
  healthPort: env.required('EDGE_HEALTH_PORT', port, '/healthz and /readyz port.'),
};

export type ListenerEnvVars = typeof listenerVars;
type ListenerVars = ListenerEnvVars;
export type CommonConfig = ConfigOf<ListenerVars>;

/** What one variable's value makes required of another. */
export const listenerChecks: EnvCheck<ListenerVars> = (c, fail) => {
  if (c.keySource === 'kms' && !c.kmsKeyId) fail('kmsKeyId', 'is required with EDGE_KEY_SOURCE=kms');
  if (c.keySource === 'file' && !c.localKeyFile)
    fail('localKeyFile', 'is required with EDGE_KEY_SOURCE=file');
  if (c.bus === 'aws') {
    for (const f of ['snsTopicArn', 'dlqUrl', 'dlqArn'] as const) {
      if (!c[f]) fail(f, 'is required with EDGE_BUS=aws');
    }
  }
};

export const shutdownDeadline = (ms: number) =>
  env.optional(
    'EDGE_SHUTDOWN_DEADLINE_MS',
    int(1000).default(ms),
    'Hard deadline of a graceful stop; past it the process exits.',
  );

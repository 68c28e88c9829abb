import { hostname } from 'node:os';
import { z } from 'zod';

/** Settings both listeners share; read from the environment once, validated, frozen. */
const port = z.coerce.number().int().min(1).max(65535);

export const commonConfigSchema = z.object({
  region: z
    .string()
    .regex(/^[a-z0-9-]{1,32}$/)
    .default('local'),
  taskId: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,48}$/)
    .default(
      () =>
        `${hostname()
          .replace(/[^A-Za-z0-9_-]/g, '-')
          .slice(0, 30)}-${process.pid}`,
    ),
  logLevel: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
  redisHost: z.string().min(1).default('127.0.0.1'),
  redisPort: port.default(6379),
  redisPrefix: z
    .string()
    .regex(/^[a-z0-9_-]+$/i)
    .default('edge'),
  tableName: z.string().min(3),
  /** dynalite or DynamoDB Local; unset on AWS. */
  dynamodbEndpoint: z.url().optional(),
  keySource: z.enum(['kms', 'file']).default('file'),
  kmsKeyId: z.string().optional(),
  localKeyFile: z.string().optional(),
  bus: z.enum(['redis', 'aws']).default('redis'),
  busRedisUrl: z.string().startsWith('redis://').default('redis://127.0.0.1:6379'),
  busStream: z.string().default('edge:events'),
  snsTopicArn: z.string().startsWith('arn:').optional(),
  queueNamePrefix: z.string().default('edge-task-'),
  dlqUrl: z.url().optional(),
  dlqArn: z.string().startsWith('arn:').optional(),
  healthHost: z.string().default('127.0.0.1'),
  healthPort: port,
});

export type CommonConfig = z.output<typeof commonConfigSchema>;

export class ListenerConfigError extends Error {
  override name = 'ListenerConfigError';
}

/** SQS_LISTENER_HEALTH_PORT → healthPort: env names in SCREAMING_SNAKE, optionally under a prefix. */
export function envInput(env: NodeJS.ProcessEnv, prefix: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined || v === '') continue;
    const name = k.startsWith(prefix) ? k.slice(prefix.length) : k;
    const camel = name.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
    if (!(camel in out) || k.startsWith(prefix)) out[camel] = v;
  }
  return out;
}

export function parseConfig<S extends z.ZodType>(schema: S, input: unknown): Readonly<z.output<S>> {
  const result = schema.safeParse(input);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ListenerConfigError(`invalid listener config:\n${lines.join('\n')}`);
  }
  const c = result.data as CommonConfig;
  if (c.keySource === 'kms' && !c.kmsKeyId)
    throw new ListenerConfigError('KMS_KEY_ID is required with KEY_SOURCE=kms');
  if (c.keySource === 'file' && !c.localKeyFile) {
    throw new ListenerConfigError('LOCAL_KEY_FILE is required with KEY_SOURCE=file');
  }
  if (c.bus === 'aws' && (!c.snsTopicArn || !c.dlqUrl || !c.dlqArn)) {
    throw new ListenerConfigError('SNS_TOPIC_ARN, DLQ_URL and DLQ_ARN are required with BUS=aws');
  }
  return Object.freeze(result.data);
}

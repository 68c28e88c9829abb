import { isIP } from 'node:net';
import { z } from 'zod';
import { hostnameSchema } from '../../core/redis-format.ts';
import { ValidationError } from '../errors.ts';

/**
 * Where the CLI finds the table, the bus and the key provider, and what the DNS check expects.
 * Each setting comes from a flag or, failing that, from its EDGE_* variable; validated once, frozen.
 */
export const cliConfigSchema = z
  .object({
    tableName: z.string({ error: 'required' }).regex(/^[A-Za-z0-9_.-]{3,255}$/, 'a DynamoDB table name'),
    /** dynalite or DynamoDB Local; unset on AWS. */
    dynamodbEndpoint: z.url().optional(),
    /** The table's region (the SDK's default chain when unset). */
    region: z
      .string()
      .regex(/^[a-z0-9-]{1,32}$/, 'a region name such as eu-west-1')
      .optional(),
    bus: z.enum(['aws', 'redis'], { error: 'required, aws or redis' }),
    snsTopicArn: z
      .string()
      .regex(/^arn:aws[\w-]*:sns:[a-z0-9-]+:\d{12}:[\w-]{1,256}$/, 'an SNS topic ARN')
      .optional(),
    redisUrl: z
      .url({ protocol: /^rediss?$/, error: 'a redis:// or rediss:// URL' })
      .default('redis://127.0.0.1:6379'),
    stream: z
      .string()
      .regex(/^[\w:.-]{1,200}$/, 'a stream name')
      .default('edge:events'),
    /** Only needed by operations that touch private keys; the commands here never do. */
    keySource: z.enum(['file', 'kms'], { error: 'file or kms' }).optional(),
    kmsKeyId: z.string().min(1).optional(),
    localKeyFile: z.string().min(1).optional(),
    edgeCname: hostnameSchema.optional(),
    edgeAddresses: z.array(z.string().refine((a) => isIP(a) !== 0, 'an IPv4 or IPv6 address')).default([]),
    dnsServers: z.array(z.string().min(1)).default([]),
    /** The issuers' delegated DNS-01 zone: domains show the `_acme-challenge` CNAME to create. */
    challengeZone: hostnameSchema.optional(),
  })
  .superRefine((c, ctx) => {
    if (c.bus === 'aws' && !c.snsTopicArn)
      ctx.addIssue({ code: 'custom', path: ['snsTopicArn'], message: 'required with bus aws' });
    if (c.keySource === 'kms' && !c.kmsKeyId)
      ctx.addIssue({ code: 'custom', path: ['kmsKeyId'], message: 'required with key source kms' });
    if (c.keySource === 'file' && !c.localKeyFile)
      ctx.addIssue({ code: 'custom', path: ['localKeyFile'], message: 'required with key source file' });
  });

export type CliConfig = Readonly<z.output<typeof cliConfigSchema>>;

/** Setting → [flag, environment variable]. */
export const SETTINGS = {
  tableName: ['table', 'EDGE_TABLE_NAME'],
  dynamodbEndpoint: ['dynamodb-endpoint', 'EDGE_DYNAMODB_ENDPOINT'],
  region: ['region', 'EDGE_REGION'],
  bus: ['bus', 'EDGE_BUS'],
  snsTopicArn: ['sns-topic-arn', 'EDGE_SNS_TOPIC_ARN'],
  redisUrl: ['redis-url', 'EDGE_BUS_REDIS_URL'],
  stream: ['stream', 'EDGE_BUS_STREAM'],
  keySource: ['key-source', 'EDGE_KEY_SOURCE'],
  kmsKeyId: ['kms-key-id', 'EDGE_KMS_KEY_ID'],
  localKeyFile: ['key-file', 'EDGE_LOCAL_KEY_FILE'],
  edgeCname: ['edge-cname', 'EDGE_DNS_CNAME'],
  edgeAddresses: ['edge-address', 'EDGE_DNS_ADDRESSES'],
  dnsServers: ['dns-server', 'EDGE_DNS_SERVERS'],
  challengeZone: ['challenge-zone', 'EDGE_DNS01_CHALLENGE_ZONE'],
} as const satisfies Record<keyof z.input<typeof cliConfigSchema>, readonly [string, string]>;

const LISTS = new Set<string>(['edgeAddresses', 'dnsServers']);

export function loadCliConfig(
  flags: Readonly<Record<string, string | string[] | boolean | undefined>>,
  env: NodeJS.ProcessEnv,
): CliConfig {
  const input: Record<string, unknown> = {};
  for (const [key, [flag, variable]] of Object.entries(SETTINGS)) {
    const fromFlag = flags[flag];
    const fromEnv = env[variable] || undefined;
    if (LISTS.has(key)) {
      const list = Array.isArray(fromFlag) ? fromFlag : fromEnv?.split(',');
      if (list) input[key] = list.map((s) => s.trim()).filter(Boolean);
    } else if (typeof fromFlag === 'string') input[key] = fromFlag;
    else if (fromEnv !== undefined) input[key] = fromEnv;
  }
  if (input.region === undefined && env.AWS_REGION) input.region = env.AWS_REGION;
  const result = cliConfigSchema.safeParse(input);
  if (!result.success) {
    const why = result.error.issues.map((issue) => {
      const names = SETTINGS[String(issue.path[0] ?? '') as keyof typeof SETTINGS];
      const where = names ? `--${names[0]} / ${names[1]}` : '(config)';
      const index = typeof issue.path[1] === 'number' ? `[${issue.path[1]}]` : '';
      return `${where}${index}: ${issue.message}`;
    });
    throw new ValidationError(`invalid configuration: ${why.join('; ')}`);
  }
  return Object.freeze(result.data);
}

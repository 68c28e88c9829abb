import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KMSClient } from '@aws-sdk/client-kms';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { SqsBus } from '../../core/bus/aws/sqs-bus.ts';
import type { Bus } from '../../core/bus/port.ts';
import { RedisStreamsBus } from '../../core/bus/redis/streams-bus.ts';
import type { DataKeyProvider } from '../../core/store/data-keys.ts';
import { KmsDataKeyProvider } from '../../core/store/kms-keys.ts';
import { LocalKeyFileProvider } from '../../core/store/local-keys.ts';
import { Store } from '../../core/store/store.ts';
import type { CommonConfig } from './config.ts';

export async function buildStore(c: CommonConfig): Promise<{ store: Store; close(): void }> {
  const client = c.dynamodbEndpoint
    ? new DynamoDBClient({
        endpoint: c.dynamodbEndpoint,
        region: 'local',
        credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      })
    : new DynamoDBClient({});
  let keys: DataKeyProvider;
  let kms: KMSClient | undefined;
  if (c.keySource === 'kms') {
    kms = new KMSClient({});
    keys = new KmsDataKeyProvider(kms, c.kmsKeyId as string);
  } else {
    keys = await LocalKeyFileProvider.open(c.localKeyFile as string);
  }
  return {
    store: new Store({ client, tableName: c.tableName, keys }),
    close: () => {
      client.destroy();
      kms?.destroy();
    },
  };
}

export function buildBus(c: CommonConfig, log: Logger): Bus {
  if (c.bus === 'aws') {
    const topicRegion = (c.snsTopicArn as string).split(':')[3];
    return new SqsBus({
      sns: new SNSClient({ region: topicRegion }),
      sqs: new SQSClient({}),
      topicArn: c.snsTopicArn as string,
      region: c.region,
      queueNamePrefix: c.queueNamePrefix,
      taskId: c.taskId,
      deadLetterQueueUrl: c.dlqUrl as string,
      deadLetterQueueArn: c.dlqArn as string,
      logger: log,
    });
  }
  const url = new URL(c.busRedisUrl);
  return new RedisStreamsBus({
    redis: { host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: 3 },
    stream: c.busStream,
    group: `${c.region}.${c.taskId}`,
    logger: log,
  });
}

/** The task's own Redis (the edge's hot store). */
export function taskRedis(c: CommonConfig, log: Logger): Redis {
  const redis = new Redis({
    host: c.redisHost,
    port: c.redisPort,
    maxRetriesPerRequest: 3,
    lazyConnect: true,
  });
  redis.on('error', (err) => log.warn({ err }, 'task redis error'));
  return redis;
}

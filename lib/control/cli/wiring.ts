import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KMSClient } from '@aws-sdk/client-kms';
import { SNSClient } from '@aws-sdk/client-sns';
import type { EventPublisher } from '../../core/bus/port.ts';
import { RedisStreamsBus } from '../../core/bus/redis/streams-bus.ts';
import type { DataKey, DataKeyProvider } from '../../core/store/data-keys.ts';
import { KmsDataKeyProvider } from '../../core/store/kms-keys.ts';
import { LocalKeyFileProvider } from '../../core/store/local-keys.ts';
import { Store } from '../../core/store/store.ts';
import { TableCertificateReader } from '../certificates.ts';
import { ControlPlane } from '../control-plane.ts';
import { NodeDnsResolver } from '../dns/resolver.ts';
import { SnsPublisher } from '../sns-publisher.ts';
import type { CliConfig } from './config.ts';

export interface Wired {
  readonly control: ControlPlane;
  close(): Promise<void>;
}

/** Builds the control plane from a validated config: the only place the CLI makes clients. */
export function wire(c: CliConfig): Wired {
  const dynamo = c.dynamodbEndpoint
    ? new DynamoDBClient({
        endpoint: c.dynamodbEndpoint,
        region: c.region ?? 'local',
        credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      })
    : new DynamoDBClient(c.region ? { region: c.region } : {});
  const kms = c.keySource === 'kms' ? new KMSClient(c.region ? { region: c.region } : {}) : undefined;
  const store = new Store({ client: dynamo, tableName: c.tableName, keys: lazyKeys(c, kms) });
  let publisher: EventPublisher;
  let closeBus: () => Promise<void>;
  if (c.bus === 'aws') {
    const topicArn = c.snsTopicArn as string;
    const sns = new SNSClient({ region: topicArn.split(':')[3] });
    publisher = new SnsPublisher(sns, topicArn);
    closeBus = async () => sns.destroy();
  } else {
    const url = new URL(c.redisUrl);
    // ioredis reports only "Connection is closed." once it gives up; keep the reason it gave up.
    let lastError: Error | undefined;
    const bus = new RedisStreamsBus({
      redis: {
        host: url.hostname.replace(/^\[|\]$/g, ''),
        port: Number(url.port || 6379),
        username: url.username ? decodeURIComponent(url.username) : undefined,
        password: url.password ? decodeURIComponent(url.password) : undefined,
        db: url.pathname.length > 1 ? Number(url.pathname.slice(1)) : undefined,
        tls: url.protocol === 'rediss:' ? {} : undefined,
        // A command line fails fast instead of retrying forever.
        connectTimeout: 5000,
        maxRetriesPerRequest: 1,
        retryStrategy: (times) => (times > 2 ? null : 200),
      },
      stream: c.stream,
      // Publishing only: the group is never created.
      group: 'control-plane',
      logger: {
        info() {},
        warn: ({ err }: { err?: Error }) => {
          lastError = err ?? lastError;
        },
        error() {},
      },
    });
    publisher = {
      publish: (event) =>
        bus.publish(event).catch((err: Error) => {
          throw lastError ? new Error(`redis ${url.host}: ${lastError.message}`, { cause: err }) : err;
        }),
    };
    closeBus = () => bus.close({ keepSubscription: true });
  }
  const control = new ControlPlane({
    store,
    bus: publisher,
    resolver: new NodeDnsResolver({ servers: c.dnsServers }),
    certificates: new TableCertificateReader(dynamo, c.tableName),
    edge:
      c.edgeCname || c.edgeAddresses.length ? { cname: c.edgeCname, addresses: c.edgeAddresses } : undefined,
    challengeZone: c.challengeZone,
  });
  return {
    control,
    async close() {
      await closeBus().catch(() => {});
      dynamo.destroy();
      kms?.destroy();
    },
  };
}

/**
 * The Store wants a key provider, but no command here seals or opens a private key: the provider
 * is opened only if one ever does (so a local key file is never created by listing tenants).
 */
function lazyKeys(c: CliConfig, kms: KMSClient | undefined): DataKeyProvider {
  let opened: Promise<DataKeyProvider> | undefined;
  const open = () => {
    opened ??= kms
      ? Promise.resolve(new KmsDataKeyProvider(kms, c.kmsKeyId as string))
      : c.localKeyFile
        ? LocalKeyFileProvider.open(c.localKeyFile)
        : Promise.reject(new Error('no key provider configured (--key-source)'));
    return opened;
  };
  return {
    kind: c.keySource === 'kms' ? 'kms' : 'local',
    generate: async (context): Promise<DataKey> => (await open()).generate(context),
    unwrap: async (wrapped, keyId, context) => (await open()).unwrap(wrapped, keyId, context),
  };
}

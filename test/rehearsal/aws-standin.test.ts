import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { DecryptCommand, GenerateDataKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { Route53Client } from '@aws-sdk/client-route-53';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PublishCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqsBus } from '../../lib/core/bus/aws/sqs-bus.ts';
import { makeEvent } from '../../lib/core/events/codec.ts';
import { ensureTable } from '../../lib/core/table.ts';
import { type Dynalite, startDynalite } from '../../lib/local/dynalite.ts';
import { freePort } from '../../lib/local/ports.ts';
import { type CallRecord, readCallRecords } from '../../lib/rehearsal/aws/record.ts';
import { type AwsStandIn, startAwsStandIn } from '../../lib/rehearsal/aws/server.ts';
import { Route53Dns } from '../../lib/sidecars/issuer/dns/route53.ts';

const ACCOUNT = '111122223333';
const REGION = 'eu-central-1';
const HOME = 'eu-west-1';
const TOPIC = `arn:aws:sns:${HOME}:${ACCOUNT}:edge-events`;
const KEY_ALIAS_ARN = `arn:aws:kms:${REGION}:${ACCOUNT}:alias/edge-events`;

let dir: string;
let standIn: AwsStandIn;
let dynalite: Dynalite;
let challtestsrv: Server;
const challenges: { path: string; body: unknown }[] = [];

function records(): CallRecord[] {
  return readCallRecords(readFileSync(standIn.recordFile, 'utf8'));
}

function recordsOf(action: string): CallRecord[] {
  return records().filter((r) => r.action === action);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'aws-standin-'));
  writeFileSync(join(dir, 'acme-account'), 'not really a key');
  challtestsrv = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      challenges.push({ path: req.url ?? '', body: JSON.parse(body) });
      res.end();
    });
  });
  await new Promise<void>((r) => challtestsrv.listen(0, '127.0.0.1', r));
  dynalite = await startDynalite({ port: await freePort(), dir });
  standIn = await startAwsStandIn({
    accountId: ACCOUNT,
    region: REGION,
    recordFile: join(dir, 'calls.jsonl'),
    secretsDir: dir,
    challtestsrvUrl: `http://127.0.0.1:${(challtestsrv.address() as AddressInfo).port}`,
    dynaliteUrl: dynalite.endpoint,
    queues: [{ name: 'edge-dlq' }],
    kmsAliases: { 'alias/private-keys': `arn:aws:kms:${REGION}:${ACCOUNT}:key/mrk-0123456789abcdef` },
    log: () => {},
  });
  // What the rehearsal gives the sidecar containers: the SDK's own endpoint variables.
  Object.assign(process.env, standIn.endpoints, {
    AWS_REGION: REGION,
    AWS_ACCESS_KEY_ID: 'rehearsal',
    AWS_SECRET_ACCESS_KEY: 'rehearsal',
  });
});

afterAll(async () => {
  await standIn?.stop();
  await dynalite?.process.stop();
  challtestsrv?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the AWS stand-in, reached through AWS_ENDPOINT_URL_* by clients built as the sidecars build them', () => {
  it('fans an SNS publish out to a raw subscription and an enveloped one', async () => {
    const sns = new SNSClient({ region: HOME });
    const sqs = new SQSClient({});
    const raw = await sqs.send(new CreateQueueCommand({ QueueName: 'edge-raw' }));
    const wrapped = await sqs.send(new CreateQueueCommand({ QueueName: 'edge-wrapped' }));
    const rawArn = `arn:aws:sqs:${REGION}:${ACCOUNT}:edge-raw`;
    await sns.send(
      new SubscribeCommand({
        TopicArn: TOPIC,
        Protocol: 'sqs',
        Endpoint: rawArn,
        Attributes: { RawMessageDelivery: 'true' },
        ReturnSubscriptionArn: true,
      }),
    );
    await sns.send(
      new SubscribeCommand({
        TopicArn: TOPIC,
        Protocol: 'sqs',
        Endpoint: `arn:aws:sqs:${REGION}:${ACCOUNT}:edge-wrapped`,
      }),
    );
    await sns.send(
      new PublishCommand({
        TopicArn: TOPIC,
        Message: '{"hello":"world"}',
        MessageAttributes: { type: { DataType: 'String', StringValue: 'cache.purge' } },
      }),
    );

    const got = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: raw.QueueUrl,
        WaitTimeSeconds: 5,
        MessageAttributeNames: ['All'],
      }),
    );
    expect(got.Messages?.map((m) => m.Body)).toEqual(['{"hello":"world"}']);
    expect(got.Messages?.[0]?.MessageAttributes?.type?.StringValue).toBe('cache.purge');
    const env = await sqs.send(new ReceiveMessageCommand({ QueueUrl: wrapped.QueueUrl, WaitTimeSeconds: 5 }));
    const envelope = JSON.parse(env.Messages?.[0]?.Body ?? '{}');
    expect(envelope).toMatchObject({ Type: 'Notification', TopicArn: TOPIC, Message: '{"hello":"world"}' });
    await sqs.send(
      new DeleteMessageCommand({ QueueUrl: raw.QueueUrl, ReceiptHandle: got.Messages?.[0]?.ReceiptHandle }),
    );

    expect(recordsOf('sns:Publish')).toEqual([
      expect.objectContaining({ resource: TOPIC, region: HOME, principal: 'task', outcome: 'ok' }),
    ]);
    expect(recordsOf('sns:Subscribe')[0]).toMatchObject({
      resource: TOPIC,
      context: { 'sns:Protocol': 'sqs', 'sns:Endpoint': rawArn },
    });
    expect(recordsOf('sqs:SendMessage').filter((r) => r.resource === rawArn)).toEqual([
      expect.objectContaining({
        principal: 'sns.amazonaws.com',
        region: REGION,
        context: { 'aws:SourceArn': TOPIC, 'aws:SourceAccount': ACCOUNT },
      }),
    ]);
    expect(recordsOf('sqs:ReceiveMessage')[0]).toMatchObject({
      resource: rawArn,
      region: REGION,
      outcome: 'ok',
    });
    expect(recordsOf('sqs:DeleteMessage')).toEqual([expect.objectContaining({ resource: rawArn })]);
  });

  it('carries events between two tasks through the sidecars own SNS+SQS bus', async () => {
    const bus = (taskId: string) =>
      new SqsBus({
        sns: new SNSClient({ region: HOME }),
        sqs: new SQSClient({}),
        topicArn: TOPIC,
        region: REGION,
        queueNamePrefix: 'edge-task-',
        taskId,
        deadLetterQueueUrl: standIn.queueUrl(REGION, 'edge-dlq'),
        deadLetterQueueArn: `arn:aws:sqs:${REGION}:${ACCOUNT}:edge-dlq`,
        waitTimeSeconds: 1,
      });
    const a = bus('a');
    const b = bus('b');
    await a.open();
    await b.open();
    const seen: string[] = [];
    await b.consume(async (event) => {
      seen.push(event.type);
    });
    await a.publish(makeEvent('cache.purge', 5, { scope: 'tenant', tenant: 'acme', generation: 5 }));
    for (let i = 0; i < 100 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    await a.close();
    await b.close();
    expect(seen).toEqual(['cache.purge']);
    const queueArn = `arn:aws:sqs:${REGION}:${ACCOUNT}:edge-task-b`;
    const actions = new Set(
      records()
        .filter((r) => r.resource === queueArn && r.principal === 'task')
        .map((r) => r.action),
    );
    expect([...actions].sort()).toEqual(
      [
        'sqs:CreateQueue',
        'sqs:DeleteMessage',
        'sqs:DeleteQueue',
        'sqs:ReceiveMessage',
        'sqs:TagQueue',
      ].sort(),
    );
  });

  it('round-trips a KMS data key only under the same encryption context', async () => {
    const kms = new KMSClient({});
    const context = { domain: 'www.acme-shop.com' };
    const key = await kms.send(
      new GenerateDataKeyCommand({ KeyId: KEY_ALIAS_ARN, KeySpec: 'AES_256', EncryptionContext: context }),
    );
    expect(key.KeyId).toMatch(new RegExp(`^arn:aws:kms:${REGION}:${ACCOUNT}:key/[0-9a-f-]{36}$`));
    const back = await kms.send(
      new DecryptCommand({
        CiphertextBlob: key.CiphertextBlob,
        KeyId: key.KeyId,
        EncryptionContext: context,
      }),
    );
    expect(Buffer.from(back.Plaintext ?? []).equals(Buffer.from(key.Plaintext ?? [1]))).toBe(true);
    await expect(
      kms.send(
        new DecryptCommand({
          CiphertextBlob: key.CiphertextBlob,
          KeyId: key.KeyId,
          EncryptionContext: { domain: 'evil.example' },
        }),
      ),
    ).rejects.toMatchObject({ name: 'InvalidCiphertextException' });

    const [generated] = recordsOf('kms:GenerateDataKey');
    expect(generated).toMatchObject({
      resource: key.KeyId,
      region: REGION,
      context: {
        'kms:ResourceAliases': ['alias/edge-events'],
        'kms:RequestAlias': 'alias/edge-events',
        'kms:EncryptionContext:domain': 'www.acme-shop.com',
        'kms:EncryptionContextKeys': ['domain'],
      },
      outcome: 'ok',
    });
    expect(
      recordsOf('kms:Decrypt').map((r) => [r.context['kms:EncryptionContext:domain'], r.outcome]),
    ).toEqual([
      ['www.acme-shop.com', 'ok'],
      ['evil.example', 'InvalidCiphertextException'],
    ]);
  });

  it('records the aliases of a key CloudFormation created when the key is named by its ARN', async () => {
    const kms = new KMSClient({});
    const keyArn = `arn:aws:kms:${REGION}:${ACCOUNT}:key/mrk-0123456789abcdef`;
    const key = await kms.send(new GenerateDataKeyCommand({ KeyId: keyArn, KeySpec: 'AES_256' }));
    expect(key.KeyId).toBe(keyArn);
    expect(recordsOf('kms:GenerateDataKey').find((r) => r.resource === keyArn)?.context).toEqual({
      'kms:CallerAccount': ACCOUNT,
      'kms:ResourceAliases': ['alias/private-keys'],
    });
  });

  it('reads a secret from its file, by name or by ARN', async () => {
    const sm = new SecretsManagerClient({});
    const byName = await sm.send(new GetSecretValueCommand({ SecretId: 'acme-account' }));
    expect(byName.SecretString).toBe('not really a key');
    expect(byName.ARN).toMatch(
      new RegExp(`^arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:acme-account-[A-Za-z0-9]{6}$`),
    );
    const byArn = await sm.send(new GetSecretValueCommand({ SecretId: byName.ARN }));
    expect(byArn.SecretString).toBe('not really a key');
    await expect(sm.send(new GetSecretValueCommand({ SecretId: 'missing' }))).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
    });
    expect(recordsOf('secretsmanager:GetSecretValue').map((r) => [r.resource, r.outcome])).toEqual([
      [byName.ARN, 'ok'],
      [byName.ARN, 'ok'],
      [expect.stringMatching(/:secret:missing-/), 'ResourceNotFoundException'],
    ]);
  });

  it('forwards Route53 DNS-01 TXT changes to challtestsrv', async () => {
    const dns = new Route53Dns({ client: new Route53Client({}), hostedZoneId: 'Z0123456789', pollMs: 10 });
    await dns.set('_acme-challenge.platform.example', ['token-1']);
    await dns.remove('_acme-challenge.platform.example', ['token-1']);
    await dns.remove('_acme-challenge.platform.example', ['token-1']);
    expect(challenges).toEqual([
      { path: '/clear-txt', body: { host: '_acme-challenge.platform.example.' } },
      { path: '/set-txt', body: { host: '_acme-challenge.platform.example.', value: 'token-1' } },
      { path: '/clear-txt', body: { host: '_acme-challenge.platform.example.' } },
    ]);
    const changes = recordsOf('route53:ChangeResourceRecordSets');
    expect(
      changes.map((r) => [r.resource, r.context['route53:ChangeResourceRecordSetsActions'], r.outcome]),
    ).toEqual([
      ['arn:aws:route53:::hostedzone/Z0123456789', ['UPSERT'], 'ok'],
      ['arn:aws:route53:::hostedzone/Z0123456789', ['DELETE'], 'ok'],
      ['arn:aws:route53:::hostedzone/Z0123456789', ['DELETE'], 'InvalidChangeBatch'],
    ]);
    expect(changes[0]?.context).toMatchObject({
      'route53:ChangeResourceRecordSetsNormalizedRecordNames': ['_acme-challenge.platform.example'],
      'route53:ChangeResourceRecordSetsRecordTypes': ['TXT'],
    });
    expect(recordsOf('route53:GetChange')[0]?.resource).toMatch(/^arn:aws:route53:::change\/C[0-9A-F]+$/);
  });

  it('records DynamoDB calls it proxies to dynalite, with the leading keys', async () => {
    const ddb = new DynamoDBClient({ region: HOME });
    await ensureTable(ddb, 'edge-state');
    await ddb.send(
      new PutItemCommand({
        TableName: 'edge-state',
        Item: { PK: { S: 'domain#a.example' }, SK: { S: 'meta' } },
      }),
    );
    const got = await ddb.send(
      new GetItemCommand({
        TableName: 'edge-state',
        Key: { PK: { S: 'domain#a.example' }, SK: { S: 'meta' } },
      }),
    );
    expect(got.Item?.PK?.S).toBe('domain#a.example');
    const table = `arn:aws:dynamodb:${HOME}:${ACCOUNT}:table/edge-state`;
    expect(recordsOf('dynamodb:GetItem')).toEqual([
      expect.objectContaining({
        resource: table,
        region: HOME,
        context: { 'dynamodb:LeadingKeys': ['domain#a.example'] },
        outcome: 'ok',
      }),
    ]);
    expect(recordsOf('dynamodb:PutItem')[0]?.context).toEqual({
      'dynamodb:LeadingKeys': ['domain#a.example'],
    });
  });
});

describe('the AWS stand-in tells callers apart by the access key they sign with', () => {
  it('records the task, another named caller, an unknown key and SNS delivering for them', async () => {
    const own = await startAwsStandIn({
      accountId: ACCOUNT,
      region: REGION,
      recordFile: join(dir, 'principals.jsonl'),
      principals: { TASKKEY: 'task', CONTROLKEY: 'control-plane' },
      log: () => {},
    });
    const client = (accessKeyId: string) =>
      new SNSClient({
        region: HOME,
        endpoint: own.url,
        credentials: { accessKeyId, secretAccessKey: 'rehearsal' },
      });
    const sqs = new SQSClient({ region: REGION, endpoint: own.url });
    try {
      await sqs.send(new CreateQueueCommand({ QueueName: 'edge-principals' }));
      await client('TASKKEY').send(
        new SubscribeCommand({
          TopicArn: TOPIC,
          Protocol: 'sqs',
          Endpoint: `arn:aws:sqs:${REGION}:${ACCOUNT}:edge-principals`,
        }),
      );
      await client('CONTROLKEY').send(new PublishCommand({ TopicArn: TOPIC, Message: '{}' }));
      await client('SOMEONEELSE').send(new PublishCommand({ TopicArn: TOPIC, Message: '{}' }));
      const calls = readCallRecords(readFileSync(own.recordFile, 'utf8'));
      expect(calls.map((c) => [c.action, c.principal])).toEqual([
        ['sqs:CreateQueue', 'access-key:rehearsal'],
        ['sns:Subscribe', 'task'],
        ['sqs:SendMessage', 'sns.amazonaws.com'],
        ['sns:Publish', 'control-plane'],
        ['sqs:SendMessage', 'sns.amazonaws.com'],
        ['sns:Publish', 'access-key:SOMEONEELSE'],
      ]);
    } finally {
      await own.stop();
    }
  });
});

describe('faults injected into the AWS stand-in', () => {
  it('fails the named services for the named caller as AWS does under stress, then recovers', async () => {
    const own = await startAwsStandIn({
      accountId: ACCOUNT,
      region: REGION,
      recordFile: join(dir, 'faults.jsonl'),
      principals: { TASKKEY: 'task' },
      multiRegionKeys: true,
      log: () => {},
    });
    const credentials = { accessKeyId: 'TASKKEY', secretAccessKey: 'rehearsal' };
    const kms = new KMSClient({ region: REGION, endpoint: own.url, credentials, maxAttempts: 1 });
    const sqs = new SQSClient({ region: REGION, endpoint: own.url, credentials, maxAttempts: 1 });
    const generate = () =>
      kms.send(new GenerateDataKeyCommand({ KeyId: 'alias/private-keys', KeySpec: 'AES_256' }));
    try {
      own.setFault({ services: ['kms'], kind: 'throttle', principal: 'task' });
      await expect(generate()).rejects.toMatchObject({ name: 'ThrottlingException' });
      own.setFault({ services: ['sqs'], kind: 'unavailable' });
      await expect(sqs.send(new CreateQueueCommand({ QueueName: 'edge-faults' }))).rejects.toMatchObject({
        $metadata: { httpStatusCode: 503 },
      });
      own.setFault({ services: ['kms'], kind: 'throttle', principal: 'someone-else' });
      await expect(generate()).resolves.toMatchObject({ KeyId: expect.stringContaining('mrk-') });
      own.setFault(undefined);
      await expect(sqs.send(new CreateQueueCommand({ QueueName: 'edge-faults' }))).resolves.toBeTruthy();
      expect(own.faulted).toEqual({ kms: 1, sqs: 1 });
      // What failed never reached the service: only the calls that were served are recorded.
      expect(readCallRecords(readFileSync(own.recordFile, 'utf8')).map((c) => c.action)).toEqual([
        'kms:GenerateDataKey',
        'sqs:CreateQueue',
      ]);
    } finally {
      kms.destroy();
      sqs.destroy();
      await own.stop();
    }
  });
});

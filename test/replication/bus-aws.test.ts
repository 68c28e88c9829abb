import { PublishCommand, SNSClient, SubscribeCommand, UnsubscribeCommand } from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  DeleteQueueCommand,
  ListQueuesCommand,
  ListQueueTagsCommand,
  SQSClient,
  TagQueueCommand,
} from '@aws-sdk/client-sqs';
import { afterAll, describe, expect, it } from 'vitest';
import { SqsBus, type SqsBusOptions } from '../../lib/core/bus/aws/sqs-bus.ts';
import type { Bus } from '../../lib/core/bus/port.ts';
import { makeEvent } from '../../lib/core/events/codec.ts';
import { busContract, until } from './bus-contract.ts';
import { DLQ_ARN, DLQ_URL, FakeAws, TOPIC_ARN } from './fake-aws.ts';

const aws = new FakeAws('eu-central-1');
afterAll(() => aws.restore());

const options = (taskId: string): SqsBusOptions => ({
  sns: new SNSClient({ region: 'eu-west-1' }),
  sqs: new SQSClient({ region: 'eu-central-1' }),
  topicArn: TOPIC_ARN,
  region: 'eu-central-1',
  queueNamePrefix: 'edge-task-',
  taskId,
  deadLetterQueueUrl: DLQ_URL,
  deadLetterQueueArn: DLQ_ARN,
  maxAttempts: 5,
  retryDelaySeconds: 0,
  waitTimeSeconds: 1,
});

const urlOf = (b: Bus) => `https://sqs.eu-central-1.amazonaws.com/111122223333/${b.subscriptionName}`;

busContract('aws', () => ({
  bus: (taskId) => new SqsBus(options(taskId)),
  async publishRaw(body) {
    aws.fanOut(body);
  },
  async deadLetters() {
    return aws.deadLetters();
  },
  async subscriptionExists(b) {
    return aws.queues.has(urlOf(b));
  },
  async makeStale(b) {
    const q = aws.queues.get(urlOf(b));
    if (q) q.tags.heartbeat = String(Date.now() - 3_600_000);
  },
}));

describe('aws bus: the exact AWS calls', () => {
  it('creates the task queue with policy, redrive, SSE and heartbeat, then subscribes with raw delivery', async () => {
    aws.sns.resetHistory();
    aws.sqs.resetHistory();
    const bus = new SqsBus({ ...options('exact-1'), eventTypes: ['cache.purge', 'cert.issued'] });
    await bus.open();
    const name = 'edge-task-exact-1';
    const queueArn = `arn:aws:sqs:eu-central-1:111122223333:${name}`;
    const create = aws.sqs.commandCalls(CreateQueueCommand);
    expect(create).toHaveLength(1);
    const input = create[0]?.args[0].input;
    expect(input?.QueueName).toBe(name);
    expect(JSON.parse(input?.Attributes?.Policy ?? '')).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'TopicSends',
          Effect: 'Allow',
          Principal: { Service: 'sns.amazonaws.com' },
          Action: 'sqs:SendMessage',
          Resource: queueArn,
          Condition: { ArnEquals: { 'aws:SourceArn': TOPIC_ARN } },
        },
      ],
    });
    expect(JSON.parse(input?.Attributes?.RedrivePolicy ?? '')).toEqual({
      deadLetterTargetArn: DLQ_ARN,
      maxReceiveCount: 7,
    });
    expect(input?.Attributes).toMatchObject({
      SqsManagedSseEnabled: 'true',
      VisibilityTimeout: '30',
      MessageRetentionPeriod: '345600',
    });
    expect(input?.tags).toEqual({
      heartbeat: expect.stringMatching(/^\d+$/),
      task: 'exact-1',
      region: 'eu-central-1',
    });

    const subscribe = aws.sns.commandCalls(SubscribeCommand);
    expect(subscribe.map((c) => c.args[0].input)).toEqual([
      {
        TopicArn: TOPIC_ARN,
        Protocol: 'sqs',
        Endpoint: queueArn,
        Attributes: {
          RawMessageDelivery: 'true',
          FilterPolicy: JSON.stringify({ type: ['cache.purge', 'cert.issued'] }),
          FilterPolicyScope: 'MessageAttributes',
        },
        ReturnSubscriptionArn: true,
      },
    ]);
    const subscriptionArn = aws.subscriptions.keys().next().value;
    expect(aws.sqs.commandCalls(TagQueueCommand).map((c) => c.args[0].input)).toEqual([
      { QueueUrl: urlOf(bus), Tags: { subscription: expect.stringContaining(TOPIC_ARN) } },
    ]);

    await bus.close();
    expect(aws.sns.commandCalls(UnsubscribeCommand).map((c) => c.args[0].input.SubscriptionArn)).toEqual([
      expect.stringContaining(`${TOPIC_ARN}:sub-`),
    ]);
    expect(aws.sqs.commandCalls(DeleteQueueCommand).map((c) => c.args[0].input)).toEqual([
      { QueueUrl: urlOf(bus) },
    ]);
    expect(subscriptionArn).toBeDefined();
  });

  it('publishes the event JSON with its type as a message attribute', async () => {
    aws.sns.resetHistory();
    const bus = new SqsBus(options('publisher'));
    const event = makeEvent('cache.purge', 5, { scope: 'tenant', tenant: 'acme', generation: 5 });
    await bus.publish(event);
    expect(aws.sns.calls().map((c) => c.args[0].input)).toEqual([
      {
        TopicArn: TOPIC_ARN,
        Message: JSON.stringify(event),
        MessageAttributes: { type: { DataType: 'String', StringValue: 'cache.purge' } },
      },
    ]);
  });

  it('sweeps an orphan: lists by prefix, reads tags, unsubscribes and deletes only the stale queue', async () => {
    const live = new SqsBus(options('sweeper'));
    await live.open();
    const dead = new SqsBus(options('dead'));
    await dead.open();
    await dead.close({ keepSubscription: true });
    const deadQueue = aws.queues.get(urlOf(dead));
    if (deadQueue) deadQueue.tags.heartbeat = '1000';
    const subscription = deadQueue?.tags.subscription;
    aws.sns.resetHistory();
    aws.sqs.resetHistory();
    expect(await live.removeOrphans()).toEqual(['edge-task-dead']);
    expect(aws.sqs.commandCalls(ListQueuesCommand).map((c) => c.args[0].input)).toEqual([
      { QueueNamePrefix: 'edge-task-', MaxResults: 1000, NextToken: undefined },
    ]);
    expect(aws.sqs.commandCalls(ListQueueTagsCommand).map((c) => c.args[0].input.QueueUrl)).toEqual([
      urlOf(dead),
    ]);
    expect(aws.sns.commandCalls(UnsubscribeCommand).map((c) => c.args[0].input)).toEqual([
      { SubscriptionArn: subscription },
    ]);
    expect(aws.sqs.commandCalls(DeleteQueueCommand).map((c) => c.args[0].input)).toEqual([
      { QueueUrl: urlOf(dead) },
    ]);
    await live.close();
  });
});

describe('aws bus: a queue deleted under a running task', () => {
  it('is recreated under a new generation name, resubscribed (the lost subscription removed), and consumed again', async () => {
    const bus = new SqsBus(options('healing'));
    const got: string[] = [];
    const gaps: string[] = [];
    await bus.open();
    await bus.consume(async (e) => void got.push(e.id), { onResubscribed: (r) => void gaps.push(r) });
    const first = makeEvent('domain.upserted', 1, { domain: 'before.example.com', tenant: 'acme' });
    await bus.publish(first);
    await until('the first event', () => got.length === 1);
    const lostSubscription = aws.queues.get(urlOf(bus))?.tags.subscription;

    aws.sns.resetHistory();
    aws.sqs.resetHistory();
    // As a sweeper or a person would: the queue is deleted, its SNS subscription left dangling.
    aws.model.delete(urlOf(bus));
    await until('the queue was recreated', () => bus.stats.resubscribed === 1, 10_000);

    const name = 'edge-task-healing-r1';
    const arn = `arn:aws:sqs:eu-central-1:111122223333:${name}`;
    expect(bus.subscriptionName).toBe(name);
    expect(aws.sns.commandCalls(UnsubscribeCommand).map((c) => c.args[0].input)).toEqual([
      { SubscriptionArn: lostSubscription },
    ]);
    expect(aws.sqs.commandCalls(CreateQueueCommand).map((c) => c.args[0].input.QueueName)).toEqual([name]);
    expect(
      JSON.parse(aws.sqs.commandCalls(CreateQueueCommand)[0]?.args[0].input.Attributes?.Policy ?? '{}')
        .Statement[0].Resource,
    ).toBe(arn);
    expect(aws.sns.commandCalls(SubscribeCommand).map((c) => c.args[0].input)).toEqual([
      {
        TopicArn: TOPIC_ARN,
        Protocol: 'sqs',
        Endpoint: arn,
        Attributes: { RawMessageDelivery: 'true' },
        ReturnSubscriptionArn: true,
      },
    ]);
    expect(aws.sqs.commandCalls(TagQueueCommand).map((c) => c.args[0].input)).toEqual([
      { QueueUrl: urlOf(bus), Tags: { subscription: expect.stringContaining(`${TOPIC_ARN}:sub-`) } },
    ]);
    expect(gaps).toEqual([expect.stringContaining('edge-task-healing was deleted')]);

    const after = makeEvent('cache.purge', 9, { scope: 'tenant', tenant: 'acme', generation: 9 });
    await bus.publish(after);
    await until('the event published after the recreation', () => got.includes(after.id));
    await bus.close();
    expect(aws.queues.has(urlOf(bus))).toBe(false);
  });

  it('backs off between failed receives during an SQS outage, and starts over after a good one', async () => {
    const asked: number[] = [];
    const bus = new SqsBus({
      ...options('outage'),
      receiveBackoffMs: (failures) => {
        asked.push(failures);
        return 0;
      },
    });
    const got: string[] = [];
    await bus.open();
    aws.receiveOutages = 3;
    await bus.consume(async (e) => void got.push(e.id));
    const event = makeEvent('cache.purge', 4, { scope: 'tenant', tenant: 'acme', generation: 4 });
    await bus.publish(event);
    await until('the event after the outage', () => got.includes(event.id), 10_000);
    // One pause before each receive that follows a failure, growing with the failures in a row.
    expect(asked.slice(0, 3)).toEqual([1, 2, 3]);
    expect(asked.every((n) => n <= 3)).toBe(true);
    await bus.close();
  });

  it('a publish SNS does not confirm (no message id) fails', async () => {
    const bus = new SqsBus(options('unconfirmed'));
    aws.sns.on(PublishCommand).resolvesOnce({});
    await expect(
      bus.publish(makeEvent('cache.purge', 3, { scope: 'tenant', tenant: 'acme', generation: 3 })),
    ).rejects.toThrow(/did not confirm/);
  });
});

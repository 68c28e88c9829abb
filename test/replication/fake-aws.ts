import { setTimeout as sleep } from 'node:timers/promises';
import { PublishCommand, SNSClient, SubscribeCommand, UnsubscribeCommand } from '@aws-sdk/client-sns';
import {
  ChangeMessageVisibilityBatchCommand,
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  DeleteQueueCommand,
  ListQueuesCommand,
  ListQueueTagsCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
  TagQueueCommand,
} from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';

export const ACCOUNT = '111122223333';
export const TOPIC_ARN = `arn:aws:sns:eu-west-1:${ACCOUNT}:edge-events`;
export const DLQ_URL = `https://sqs.eu-central-1.amazonaws.com/${ACCOUNT}/edge-dlq`;
export const DLQ_ARN = `arn:aws:sqs:eu-central-1:${ACCOUNT}:edge-dlq`;

interface FakeMessage {
  id: string;
  body: string;
  receipt: string;
  visibleAt: number;
  receives: number;
  attributes?: Record<string, { DataType?: string; StringValue?: string }>;
}

interface FakeQueue {
  name: string;
  url: string;
  arn: string;
  tags: Record<string, string>;
  visibilitySeconds: number;
  messages: FakeMessage[];
}

/**
 * SNS and SQS behind aws-sdk-client-mock, with just enough behaviour (fan-out, visibility,
 * receive counts) for the bus contract; every call stays recorded for exact assertions.
 */
export class FakeAws {
  readonly sns = mockClient(SNSClient);
  readonly sqs = mockClient(SQSClient);
  readonly queues = new Map<string, FakeQueue>();
  readonly subscriptions = new Map<string, string>();
  private seq = 0;

  constructor(region = 'eu-central-1') {
    this.queues.set(DLQ_URL, this.queue('edge-dlq', DLQ_URL, DLQ_ARN, 30));
    this.sqs.on(CreateQueueCommand).callsFake((input) => {
      const url = `https://sqs.${region}.amazonaws.com/${ACCOUNT}/${input.QueueName}`;
      const arn = `arn:aws:sqs:${region}:${ACCOUNT}:${input.QueueName}`;
      const q = this.queue(input.QueueName, url, arn, Number(input.Attributes?.VisibilityTimeout ?? 30));
      q.tags = { ...input.tags };
      this.queues.set(url, q);
      return { QueueUrl: url };
    });
    this.sqs.on(DeleteQueueCommand).callsFake((input) => {
      this.queues.delete(input.QueueUrl);
      return {};
    });
    this.sqs.on(TagQueueCommand).callsFake((input) => {
      const q = this.queues.get(input.QueueUrl);
      if (q) Object.assign(q.tags, input.Tags);
      return {};
    });
    this.sqs
      .on(ListQueueTagsCommand)
      .callsFake((input) => ({ Tags: { ...this.queues.get(input.QueueUrl)?.tags } }));
    this.sqs.on(ListQueuesCommand).callsFake((input) => ({
      QueueUrls: [...this.queues.values()]
        .filter((q) => q.name.startsWith(input.QueueNamePrefix))
        .map((q) => q.url),
    }));
    this.sqs.on(SendMessageCommand).callsFake((input) => {
      this.queues
        .get(input.QueueUrl)
        ?.messages.push(this.message(input.MessageBody, input.MessageAttributes));
      return { MessageId: `m-${this.seq}` };
    });
    this.sqs.on(ReceiveMessageCommand).callsFake(async (input) => {
      const q = this.queues.get(input.QueueUrl);
      if (!q) throw Object.assign(new Error('queue does not exist'), { name: 'QueueDoesNotExist' });
      const now = Date.now();
      const ready = q.messages.filter((m) => m.visibleAt <= now).slice(0, input.MaxNumberOfMessages ?? 1);
      if (ready.length === 0) {
        await sleep(20);
        return { Messages: [] };
      }
      return {
        Messages: ready.map((m) => {
          m.receives += 1;
          m.receipt = `r-${++this.seq}`;
          m.visibleAt = now + (input.VisibilityTimeout ?? q.visibilitySeconds) * 1000;
          return {
            MessageId: m.id,
            ReceiptHandle: m.receipt,
            Body: m.body,
            Attributes: { ApproximateReceiveCount: String(m.receives) },
          };
        }),
      };
    });
    const remove = (url: string | undefined, receipt: string | undefined) => {
      const q = this.queues.get(url ?? '');
      if (q) q.messages = q.messages.filter((m) => m.receipt !== receipt);
    };
    this.sqs.on(DeleteMessageCommand).callsFake((input) => {
      remove(input.QueueUrl, input.ReceiptHandle);
      return {};
    });
    this.sqs.on(DeleteMessageBatchCommand).callsFake((input) => {
      for (const e of input.Entries ?? []) remove(input.QueueUrl, e.ReceiptHandle);
      return { Successful: (input.Entries ?? []).map((e: { Id: string }) => ({ Id: e.Id })), Failed: [] };
    });
    const changeVisibility = (url: string | undefined, receipt: string | undefined, seconds: number) => {
      const m = this.queues.get(url ?? '')?.messages.find((x) => x.receipt === receipt);
      if (m) m.visibleAt = Date.now() + seconds * 1000;
    };
    this.sqs.on(ChangeMessageVisibilityCommand).callsFake((input) => {
      changeVisibility(input.QueueUrl, input.ReceiptHandle, input.VisibilityTimeout);
      return {};
    });
    this.sqs.on(ChangeMessageVisibilityBatchCommand).callsFake((input) => {
      for (const e of input.Entries ?? [])
        changeVisibility(input.QueueUrl, e.ReceiptHandle, e.VisibilityTimeout);
      return { Successful: [], Failed: [] };
    });
    this.sns.on(SubscribeCommand).callsFake((input) => {
      const arn = `${input.TopicArn}:sub-${++this.seq}`;
      this.subscriptions.set(arn, input.Endpoint);
      return { SubscriptionArn: arn };
    });
    this.sns.on(UnsubscribeCommand).callsFake((input) => {
      this.subscriptions.delete(input.SubscriptionArn);
      return {};
    });
    this.sns.on(PublishCommand).callsFake((input) => {
      this.fanOut(input.Message);
      return { MessageId: `p-${++this.seq}` };
    });
  }

  /** What SNS does with raw delivery: the same body into every subscribed queue. */
  fanOut(body: string): void {
    for (const endpoint of this.subscriptions.values()) {
      const q = [...this.queues.values()].find((x) => x.arn === endpoint);
      q?.messages.push(this.message(body));
    }
  }

  deadLetters(): { reason: string; body: string }[] {
    return (this.queues.get(DLQ_URL)?.messages ?? []).map((m) => ({
      reason: m.attributes?.reason?.StringValue ?? '',
      body: m.body,
    }));
  }

  restore(): void {
    this.sns.restore();
    this.sqs.restore();
  }

  private queue(name: string, url: string, arn: string, visibilitySeconds: number): FakeQueue {
    return { name, url, arn, tags: {}, visibilitySeconds, messages: [] };
  }

  private message(body: string, attributes?: FakeMessage['attributes']): FakeMessage {
    return { id: `m-${++this.seq}`, body, receipt: '', visibleAt: 0, receives: 0, attributes };
  }
}

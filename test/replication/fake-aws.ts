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
import { QueueModel } from '../../lib/rehearsal/aws/queue-model.ts';

export const ACCOUNT = '111122223333';
export const TOPIC_ARN = `arn:aws:sns:eu-west-1:${ACCOUNT}:edge-events`;
export const DLQ_URL = `https://sqs.eu-central-1.amazonaws.com/${ACCOUNT}/edge-dlq`;
export const DLQ_ARN = `arn:aws:sqs:eu-central-1:${ACCOUNT}:edge-dlq`;

/**
 * SNS and SQS behind aws-sdk-client-mock, on the same queue model as the rehearsal's AWS stand-in
 * (fan-out, visibility, receive counts, redrive); every call stays recorded for exact assertions.
 */
export class FakeAws {
  readonly sns = mockClient(SNSClient);
  readonly sqs = mockClient(SQSClient);
  readonly model = new QueueModel();
  /** The next this-many ReceiveMessage calls fail as in an SQS outage (any queue). */
  receiveOutages = 0;
  /** Queues by URL (what the tests look at). */
  readonly queues = {
    has: (url: string) => this.model.get(url) !== undefined,
    get: (url: string) => this.model.get(url),
  };
  readonly subscriptions = new Map<string, string>();
  private seq = 0;

  constructor(region = 'eu-central-1') {
    this.model.create('edge-dlq', DLQ_URL, DLQ_ARN);
    this.sqs.on(CreateQueueCommand).callsFake((input) => {
      const url = `https://sqs.${region}.amazonaws.com/${ACCOUNT}/${input.QueueName}`;
      const arn = `arn:aws:sqs:${region}:${ACCOUNT}:${input.QueueName}`;
      this.model.create(input.QueueName, url, arn, input.Attributes, input.tags);
      return { QueueUrl: url };
    });
    this.sqs.on(DeleteQueueCommand).callsFake((input) => {
      this.model.delete(input.QueueUrl);
      return {};
    });
    this.sqs.on(TagQueueCommand).callsFake((input) => {
      this.model.tag(input.QueueUrl, input.Tags ?? {});
      return {};
    });
    this.sqs
      .on(ListQueueTagsCommand)
      .callsFake((input) => ({ Tags: { ...this.model.get(input.QueueUrl)?.tags } }));
    this.sqs.on(ListQueuesCommand).callsFake((input) => ({
      QueueUrls: this.model.list(input.QueueNamePrefix).map((q) => q.url),
    }));
    this.sqs.on(SendMessageCommand).callsFake((input) => {
      const m = this.model.send(input.QueueUrl, input.MessageBody, input.MessageAttributes);
      return { MessageId: m?.id };
    });
    this.sqs.on(ReceiveMessageCommand).callsFake(async (input) => {
      if (this.receiveOutages > 0) {
        this.receiveOutages -= 1;
        throw Object.assign(new Error('Service Unavailable'), { name: 'ServiceUnavailable' });
      }
      if (!this.model.get(input.QueueUrl)) {
        throw Object.assign(new Error('queue does not exist'), { name: 'QueueDoesNotExist' });
      }
      const ready = this.model.receive(input.QueueUrl, {
        max: input.MaxNumberOfMessages ?? 1,
        visibilitySeconds: input.VisibilityTimeout,
      });
      if (ready.length === 0) {
        await sleep(20);
        return { Messages: [] };
      }
      return {
        Messages: ready.map(({ message: m, receipt }) => ({
          MessageId: m.id,
          ReceiptHandle: receipt,
          Body: m.body,
          Attributes: { ApproximateReceiveCount: String(m.receives) },
        })),
      };
    });
    this.sqs.on(DeleteMessageCommand).callsFake((input) => {
      this.model.deleteMessage(input.QueueUrl, input.ReceiptHandle);
      return {};
    });
    this.sqs.on(DeleteMessageBatchCommand).callsFake((input) => {
      for (const e of input.Entries ?? []) this.model.deleteMessage(input.QueueUrl, e.ReceiptHandle);
      return { Successful: (input.Entries ?? []).map((e: { Id: string }) => ({ Id: e.Id })), Failed: [] };
    });
    this.sqs.on(ChangeMessageVisibilityCommand).callsFake((input) => {
      this.model.changeVisibility(input.QueueUrl, input.ReceiptHandle, input.VisibilityTimeout);
      return {};
    });
    this.sqs.on(ChangeMessageVisibilityBatchCommand).callsFake((input) => {
      for (const e of input.Entries ?? [])
        this.model.changeVisibility(input.QueueUrl, e.ReceiptHandle, e.VisibilityTimeout ?? 0);
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
      const q = this.model.byArn(endpoint);
      if (q) this.model.send(q.url, body);
    }
  }

  deadLetters(): { reason: string; body: string }[] {
    return (this.model.get(DLQ_URL)?.messages ?? []).map((m) => ({
      reason: m.attributes?.reason?.StringValue ?? '',
      body: m.body,
    }));
  }

  restore(): void {
    this.sns.restore();
    this.sqs.restore();
  }
}

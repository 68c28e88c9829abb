import { PublishCommand, type SNSClient, SubscribeCommand, UnsubscribeCommand } from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  DeleteQueueCommand,
  ListQueuesCommand,
  ListQueueTagsCommand,
  type Message,
  SendMessageCommand,
  type SQSClient,
  TagQueueCommand,
} from '@aws-sdk/client-sqs';
import { Consumer } from 'sqs-consumer';
import { encodeEvent } from '../../events/codec.ts';
import type { EdgeEvent, EventType } from '../../events/schema.ts';
import { dispatch } from '../dispatch.ts';
import { BusError } from '../errors.ts';
import {
  type Bus,
  type BusLogger,
  DEFAULTS,
  type EventHandler,
  type SubscriptionOptions,
  silentLogger,
} from '../port.ts';
import { queueArn, queueName, queuePolicy } from './names.ts';

export interface SqsBusOptions extends SubscriptionOptions {
  readonly sns: SNSClient;
  /** A client in the task's region. */
  readonly sqs: SQSClient;
  readonly topicArn: string;
  /** The task's region (where its queue lives). */
  readonly region: string;
  /** Scoped in IAM: tasks may only create and delete queues whose names start with it. */
  readonly queueNamePrefix: string;
  readonly taskId: string;
  /** The regional dead-letter queue: redrive target, and where malformed events go with their reason. */
  readonly deadLetterQueueUrl: string;
  readonly deadLetterQueueArn: string;
  /** SSE with this KMS key; default SQS-managed SSE. */
  readonly kmsMasterKeyId?: string;
  /** Only these event types reach the queue (an SNS filter policy on the `type` attribute); default all. */
  readonly eventTypes?: readonly EventType[];
  /** Seconds a failed event stays invisible before its retry; default 5. */
  readonly retryDelaySeconds?: number;
  readonly visibilityTimeoutSeconds?: number;
  /** Long-poll wait; default 20 s (the maximum). */
  readonly waitTimeSeconds?: number;
  readonly batchSize?: number;
}

/**
 * The bus on AWS: SNS publish; per task an SQS queue subscribed to the topic with raw delivery,
 * redrive to the regional DLQ, SSE, a heartbeat tag; consumed with sqs-consumer.
 */
export class SqsBus implements Bus {
  readonly kind = 'aws';
  readonly subscriptionName: string;
  private readonly arn: string;
  private readonly log: BusLogger;
  private queueUrl: string | undefined;
  private subscriptionArn: string | undefined;
  private consumer: Consumer | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private inFlight = 0;
  private idle: (() => void) | undefined;

  constructor(private readonly opts: SqsBusOptions) {
    this.subscriptionName = queueName(opts.queueNamePrefix, opts.taskId);
    this.arn = queueArn(opts.topicArn, opts.region, this.subscriptionName);
    this.log = opts.logger ?? silentLogger;
  }

  async publish(event: EdgeEvent): Promise<void> {
    await this.opts.sns.send(
      new PublishCommand({
        TopicArn: this.opts.topicArn,
        Message: encodeEvent(event),
        MessageAttributes: { type: { DataType: 'String', StringValue: event.type } },
      }),
    );
  }

  async open(): Promise<void> {
    const maxAttempts = this.opts.maxAttempts ?? DEFAULTS.maxAttempts;
    const sse: Record<string, string> = this.opts.kmsMasterKeyId
      ? { KmsMasterKeyId: this.opts.kmsMasterKeyId }
      : { SqsManagedSseEnabled: 'true' };
    const created = await this.opts.sqs.send(
      new CreateQueueCommand({
        QueueName: this.subscriptionName,
        Attributes: {
          Policy: queuePolicy(this.arn, this.opts.topicArn),
          // A backstop: the consumer dead-letters with a reason itself after maxAttempts.
          RedrivePolicy: JSON.stringify({
            deadLetterTargetArn: this.opts.deadLetterQueueArn,
            maxReceiveCount: maxAttempts + 2,
          }),
          VisibilityTimeout: String(this.opts.visibilityTimeoutSeconds ?? 30),
          MessageRetentionPeriod: String(4 * 24 * 3600),
          ...sse,
        },
        tags: { heartbeat: String(Date.now()), task: this.opts.taskId, region: this.opts.region },
      }),
    );
    if (!created.QueueUrl) throw new BusError(`CreateQueue returned no URL for ${this.subscriptionName}`);
    this.queueUrl = created.QueueUrl;
    const attributes: Record<string, string> = { RawMessageDelivery: 'true' };
    if (this.opts.eventTypes) {
      attributes.FilterPolicy = JSON.stringify({ type: [...this.opts.eventTypes] });
      attributes.FilterPolicyScope = 'MessageAttributes';
    }
    const sub = await this.opts.sns.send(
      new SubscribeCommand({
        TopicArn: this.opts.topicArn,
        Protocol: 'sqs',
        Endpoint: this.arn,
        Attributes: attributes,
        ReturnSubscriptionArn: true,
      }),
    );
    this.subscriptionArn = sub.SubscriptionArn;
    // The sweeper of another task needs it to unsubscribe this queue if this task dies.
    if (this.subscriptionArn) await this.tag({ subscription: this.subscriptionArn });
    this.heartbeat = setInterval(() => {
      this.tag({ heartbeat: String(Date.now()) }).catch((err) =>
        this.log.warn({ err }, 'queue heartbeat failed'),
      );
    }, this.opts.heartbeatMs ?? DEFAULTS.heartbeatMs);
    this.heartbeat.unref();
    this.log.info({ queue: this.subscriptionName, subscription: this.subscriptionArn }, 'task queue created');
  }

  async consume(handler: EventHandler): Promise<void> {
    if (!this.queueUrl) throw new BusError('open() the bus before consume()');
    if (this.consumer) throw new BusError('already consuming');
    const maxAttempts = this.opts.maxAttempts ?? DEFAULTS.maxAttempts;
    this.consumer = Consumer.create({
      queueUrl: this.queueUrl,
      sqs: this.opts.sqs,
      batchSize: this.opts.batchSize ?? 10,
      waitTimeSeconds: this.opts.waitTimeSeconds ?? 20,
      visibilityTimeout: this.opts.visibilityTimeoutSeconds ?? 30,
      // sqs-consumer reads 0 as "leave the visibility alone"; true means "visible at once".
      terminateVisibilityTimeout: (this.opts.retryDelaySeconds ?? 5) || true,
      messageSystemAttributeNames: ['ApproximateReceiveCount'],
      handleMessage: async (message: Message) => {
        this.inFlight += 1;
        try {
          const outcome = await dispatch({
            body: message.Body ?? '',
            attempt: Number(message.Attributes?.ApproximateReceiveCount ?? 1),
            maxAttempts,
            handler,
            deadLetter: (body, reason) => this.deadLetter(body, reason),
            logger: this.log,
          });
          if (outcome === 'retry') throw new BusError('handler failed; the message becomes visible again');
          return message;
        } finally {
          this.inFlight -= 1;
          if (this.inFlight === 0) this.idle?.();
        }
      },
    });
    this.consumer.on('error', (err) => this.log.error({ err }, 'sqs consumer error'));
    this.consumer.on('processing_error', (err) => {
      if (!(err.cause instanceof BusError)) this.log.warn({ err }, 'sqs processing error');
    });
    this.consumer.start();
  }

  async close(opts: { keepSubscription?: boolean } = {}): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.consumer) {
      this.consumer.stop({ abort: true });
      if (this.inFlight > 0) await new Promise<void>((resolve) => (this.idle = resolve));
    }
    if (opts.keepSubscription || !this.queueUrl) return;
    if (this.subscriptionArn) {
      await this.opts.sns.send(new UnsubscribeCommand({ SubscriptionArn: this.subscriptionArn }));
    }
    await this.opts.sqs.send(new DeleteQueueCommand({ QueueUrl: this.queueUrl }));
    this.log.info({ queue: this.subscriptionName }, 'task queue deleted');
    this.queueUrl = undefined;
  }

  async removeOrphans(): Promise<string[]> {
    const staleBefore = Date.now() - (this.opts.staleAfterMs ?? DEFAULTS.staleAfterMs);
    const removed: string[] = [];
    let next: string | undefined;
    do {
      const page = await this.opts.sqs.send(
        new ListQueuesCommand({
          QueueNamePrefix: this.opts.queueNamePrefix,
          MaxResults: 1000,
          NextToken: next,
        }),
      );
      next = page.NextToken;
      for (const url of page.QueueUrls ?? []) {
        if (url === this.queueUrl) continue;
        const { Tags: tags = {} } = await this.opts.sqs.send(new ListQueueTagsCommand({ QueueUrl: url }));
        if (Number(tags.heartbeat ?? 0) >= staleBefore) continue;
        if (tags.subscription) {
          try {
            await this.opts.sns.send(new UnsubscribeCommand({ SubscriptionArn: tags.subscription }));
          } catch (err) {
            this.log.warn({ err, url }, 'failed to unsubscribe an orphaned queue');
          }
        }
        await this.opts.sqs.send(new DeleteQueueCommand({ QueueUrl: url }));
        removed.push(url.slice(url.lastIndexOf('/') + 1));
      }
    } while (next);
    if (removed.length) this.log.info({ removed }, 'removed orphaned task queues');
    return removed;
  }

  private async deadLetter(body: string, reason: string): Promise<void> {
    await this.opts.sqs.send(
      new SendMessageCommand({
        QueueUrl: this.opts.deadLetterQueueUrl,
        MessageBody: body,
        MessageAttributes: {
          reason: { DataType: 'String', StringValue: reason.slice(0, 1024) },
          queue: { DataType: 'String', StringValue: this.subscriptionName },
        },
      }),
    );
  }

  private async tag(tags: Record<string, string>): Promise<void> {
    if (!this.queueUrl) return;
    await this.opts.sqs.send(new TagQueueCommand({ QueueUrl: this.queueUrl, Tags: tags }));
  }
}

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
  type ConsumeOptions,
  DEFAULTS,
  type EventHandler,
  newBusStats,
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
  /**
   * Pause before the next receive after `failures` receives failed in a row. Default: exponential
   * from 200 ms to 20 s with full jitter, so an SQS outage costs a few calls a minute per task
   * instead of a tight loop (sqs-consumer itself re-polls at once on any error but credentials).
   */
  readonly receiveBackoffMs?: (failures: number) => number;
}

/** Full-jitter exponential backoff: 200 ms · 2^(n-1), capped at 20 s. */
export function receiveBackoffMs(failures: number): number {
  return Math.random() * Math.min(20_000, 200 * 2 ** Math.max(0, failures - 1));
}

/** The error codes SQS answers for a queue that no longer exists. */
const MISSING_QUEUE = new Set(['QueueDoesNotExist', 'AWS.SimpleQueueService.NonExistentQueue']);

function isMissingQueue(err: unknown): boolean {
  const e = err as { code?: string; name?: string; cause?: unknown } | undefined;
  if (!e) return false;
  return MISSING_QUEUE.has(e.code ?? '') || MISSING_QUEUE.has(e.name ?? '') || isMissingQueue(e.cause);
}

/**
 * The bus on AWS: SNS publish; per task an SQS queue subscribed to the topic with raw delivery,
 * redrive to the regional DLQ, SSE, a heartbeat tag; consumed with sqs-consumer. A queue deleted
 * under a running task (a sweeper, a person) is recreated and resubscribed; since SQS refuses a
 * deleted queue's name for 60 s, the new queue's name carries a generation suffix (`-r1`, `-r2`).
 */
export class SqsBus implements Bus {
  readonly kind = 'aws';
  readonly stats = newBusStats();
  private name: string;
  private arn: string;
  private readonly log: BusLogger;
  private queueUrl: string | undefined;
  private subscriptionArn: string | undefined;
  private consumer: Consumer | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private inFlight = 0;
  /** Receives (or SQS calls) failed in a row since the last good receive: the backoff grows with it. */
  private receiveFailures = 0;
  private idle: (() => void) | undefined;
  private handler: EventHandler | undefined;
  private consumeOpts: ConsumeOptions = {};
  private generation = 0;
  private recreating: Promise<void> | undefined;
  private closing = false;

  constructor(private readonly opts: SqsBusOptions) {
    this.name = queueName(opts.queueNamePrefix, opts.taskId);
    this.arn = queueArn(opts.topicArn, opts.region, this.name);
    this.log = opts.logger ?? silentLogger;
  }

  /** This task's queue name (with its generation suffix once recreated). */
  get subscriptionName(): string {
    return this.name;
  }

  /** Resolves once SNS accepted the event (it returned a message id); throws otherwise. */
  async publish(event: EdgeEvent): Promise<void> {
    const out = await this.opts.sns.send(
      new PublishCommand({
        TopicArn: this.opts.topicArn,
        Message: encodeEvent(event),
        MessageAttributes: { type: { DataType: 'String', StringValue: event.type } },
      }),
    );
    if (!out?.MessageId) throw new BusError(`SNS did not confirm ${event.type} ${event.id}: no message id`);
  }

  async open(): Promise<void> {
    await this.createAndSubscribe();
  }

  private async createAndSubscribe(): Promise<void> {
    const maxAttempts = this.opts.maxAttempts ?? DEFAULTS.maxAttempts;
    const sse: Record<string, string> = this.opts.kmsMasterKeyId
      ? { KmsMasterKeyId: this.opts.kmsMasterKeyId }
      : { SqsManagedSseEnabled: 'true' };
    const created = await this.opts.sqs.send(
      new CreateQueueCommand({
        QueueName: this.name,
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
    if (!created.QueueUrl) throw new BusError(`CreateQueue returned no URL for ${this.name}`);
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
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => {
      this.tag({ heartbeat: String(Date.now()) }).catch((err) => {
        this.log.warn({ err }, 'queue heartbeat failed');
        if (isMissingQueue(err)) this.queueGone(`heartbeat: ${(err as Error).message}`);
      });
    }, this.opts.heartbeatMs ?? DEFAULTS.heartbeatMs);
    this.heartbeat.unref();
    this.log.info({ queue: this.name, subscription: this.subscriptionArn }, 'task queue created');
  }

  async consume(handler: EventHandler, opts: ConsumeOptions = {}): Promise<void> {
    if (!this.queueUrl) throw new BusError('open() the bus before consume()');
    if (this.consumer) throw new BusError('already consuming');
    this.handler = handler;
    this.consumeOpts = opts;
    this.startConsumer(this.queueUrl, handler);
  }

  private startConsumer(queueUrl: string, handler: EventHandler): void {
    const maxAttempts = this.opts.maxAttempts ?? DEFAULTS.maxAttempts;
    const consumer = Consumer.create({
      queueUrl,
      sqs: this.opts.sqs,
      batchSize: this.opts.batchSize ?? 10,
      waitTimeSeconds: this.opts.waitTimeSeconds ?? 20,
      visibilityTimeout: this.opts.visibilityTimeoutSeconds ?? 30,
      // sqs-consumer reads 0 as "leave the visibility alone"; true means "visible at once".
      terminateVisibilityTimeout: (this.opts.retryDelaySeconds ?? 5) || true,
      messageSystemAttributeNames: ['ApproximateReceiveCount'],
      preReceiveMessageCallback: async () => {
        if (this.receiveFailures === 0) return;
        const ms = (this.opts.receiveBackoffMs ?? receiveBackoffMs)(this.receiveFailures);
        if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms).unref());
      },
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
            stats: this.stats,
          });
          if (outcome === 'retry') throw new BusError('handler failed; the message becomes visible again');
          return message;
        } finally {
          this.inFlight -= 1;
          if (this.inFlight === 0) this.idle?.();
        }
      },
    });
    consumer.on('response_processed', () => this.received());
    consumer.on('empty', () => this.received());
    consumer.on('error', (err) => {
      this.stats.lastError = err.message;
      this.receiveFailures += 1;
      if (consumer === this.consumer && isMissingQueue(err)) this.queueGone(err.message);
      else this.log.error({ err }, 'sqs consumer error');
    });
    consumer.on('processing_error', (err) => {
      if (!(err.cause instanceof BusError)) this.log.warn({ err }, 'sqs processing error');
    });
    this.consumer = consumer;
    consumer.start();
  }

  private received(): void {
    this.receiveFailures = 0;
    this.stats.lastReceiveOkMs = Date.now();
    this.stats.lastError = undefined;
  }

  /** The queue is gone: recreate, resubscribe and consume again, retrying until it works or close(). */
  private queueGone(reason: string): void {
    if (this.recreating || this.closing) return;
    this.recreating = this.recreate(reason)
      .catch((err) => this.log.error({ err }, 'recreating the task queue failed'))
      .finally(() => {
        this.recreating = undefined;
      });
  }

  private async recreate(reason: string): Promise<void> {
    const lost = this.name;
    this.log.warn({ queue: lost, reason }, 'task queue is gone; recreating it');
    this.consumer?.stop({ abort: true });
    this.consumer = undefined;
    const oldSubscription = this.subscriptionArn;
    this.subscriptionArn = undefined;
    if (oldSubscription) {
      try {
        await this.opts.sns.send(new UnsubscribeCommand({ SubscriptionArn: oldSubscription }));
      } catch (err) {
        this.log.warn({ err }, 'failed to unsubscribe the lost queue');
      }
    }
    for (let delayMs = 1000; !this.closing; delayMs = Math.min(delayMs * 2, 30_000)) {
      try {
        this.generation += 1;
        this.name = queueName(this.opts.queueNamePrefix, `${this.opts.taskId}-r${this.generation}`);
        this.arn = queueArn(this.opts.topicArn, this.opts.region, this.name);
        await this.createAndSubscribe();
        break;
      } catch (err) {
        this.stats.lastError = (err as Error).message;
        this.log.error({ err, queue: this.name }, 'recreating the task queue failed; retrying');
        await new Promise((r) => setTimeout(r, delayMs));
      }
    }
    if (this.closing || !this.queueUrl || !this.handler) return;
    this.stats.resubscribed += 1;
    this.log.warn({ lost, queue: this.name }, 'task queue recreated and resubscribed');
    this.startConsumer(this.queueUrl, this.handler);
    this.consumeOpts.onResubscribed?.(`queue ${lost} was deleted: ${reason}`);
  }

  async close(opts: { keepSubscription?: boolean } = {}): Promise<void> {
    this.closing = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    await this.recreating;
    if (this.consumer) {
      this.consumer.stop({ abort: true });
      if (this.inFlight > 0) await new Promise<void>((resolve) => (this.idle = resolve));
    }
    if (opts.keepSubscription || !this.queueUrl) return;
    if (this.subscriptionArn) {
      await this.opts.sns.send(new UnsubscribeCommand({ SubscriptionArn: this.subscriptionArn }));
    }
    await this.opts.sqs.send(new DeleteQueueCommand({ QueueUrl: this.queueUrl }));
    this.log.info({ queue: this.name }, 'task queue deleted');
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
          queue: { DataType: 'String', StringValue: this.name },
        },
      }),
    );
  }

  private async tag(tags: Record<string, string>): Promise<void> {
    if (!this.queueUrl) return;
    await this.opts.sqs.send(new TagQueueCommand({ QueueUrl: this.queueUrl, Tags: tags }));
  }
}

import type { ServiceHandler, ServiceRequest, StandInContext } from './context.ts';
import { AwsApiError, md5Hex, sendJsonError, serveJsonCall } from './http.ts';
import { type MessageAttributeValue, type Queue, QueueModel } from './queue-model.ts';
import type { NewCallRecord } from './record.ts';

const CONTENT_TYPE = 'application/x-amz-json-1.0';
/** SQS's JSON protocol keeps the query protocol's error codes in this header (awsQueryCompatible). */
const QUERY_CODES: Record<string, string> = {
  QueueDoesNotExist: 'AWS.SimpleQueueService.NonExistentQueue',
  InvalidParameterValue: 'InvalidParameterValue',
  UnsupportedOperation: 'AWS.SimpleQueueService.UnsupportedOperation',
};

type Input = Record<string, unknown> & { QueueUrl?: string };

/** SQS over AWS JSON 1.0 (`X-Amz-Target: AmazonSQS.<Operation>`), on the shared queue model. */
export class SqsStandIn implements ServiceHandler {
  readonly model = new QueueModel();

  constructor(private readonly ctx: StandInContext) {}

  queueUrl(region: string, name: string): string {
    return `${this.ctx.publicUrl}/queue/${region}/${this.ctx.account}/${name}`;
  }

  queueArn(region: string, name: string): string {
    return `arn:${this.ctx.partition}:sqs:${region}:${this.ctx.account}:${name}`;
  }

  /** Creates a queue as CloudFormation would have (the regional dead-letter queue). */
  ensureQueue(region: string, name: string, attributes: Record<string, string> = {}): Queue {
    return this.model.create(name, this.queueUrl(region, name), this.queueArn(region, name), attributes);
  }

  /**
   * The queue's ARN from any URL form: this stand-in's `/queue/<region>/<account>/<name>` or
   * AWS's `https://sqs.<region>.amazonaws.com/<account>/<name>`.
   */
  arnOfUrl(url: string, fallbackRegion: string): string {
    let path: string[];
    let host = '';
    try {
      const u = new URL(url);
      path = u.pathname.split('/').filter(Boolean);
      host = u.hostname;
    } catch {
      throw new AwsApiError('InvalidAddress', `not a queue URL: ${url}`);
    }
    const name = path.at(-1);
    const account = path.at(-2);
    if (!name || !account) throw new AwsApiError('InvalidAddress', `not a queue URL: ${url}`);
    const region =
      path[0] === 'queue' && path.length === 4
        ? (path[1] as string)
        : (/^sqs\.([a-z0-9-]+)\./.exec(host)?.[1] ?? fallbackRegion);
    return `arn:${this.ctx.partition}:sqs:${region}:${account}:${name}`;
  }

  handle(r: ServiceRequest): Promise<void> {
    return serveJsonCall(r, this.ctx, {
      contentType: CONTENT_TYPE,
      internalCode: 'InternalError',
      dispatch: (op, input, records) => this.dispatch(op, input as Input, r, records),
      // The SQS client reads the code from this header and the prefixed type.
      sendError: (e) => {
        r.res.setHeader('x-amzn-query-error', `${QUERY_CODES[e.code] ?? e.code};Sender`);
        sendJsonError(
          r.res,
          new AwsApiError(`com.amazonaws.sqs#${e.code}`, e.message, e.status),
          CONTENT_TYPE,
        );
      },
    });
  }

  private record(
    records: NewCallRecord[],
    action: string,
    resource: string,
    region: string,
    context = {},
  ): void {
    records.push({ service: 'sqs', action: `sqs:${action}`, resource, region, context });
  }

  private queueOf(input: Input, r: ServiceRequest): { arn: string; queue: Queue | undefined } {
    if (!input.QueueUrl) throw new AwsApiError('MissingParameter', 'QueueUrl is required');
    const arn = this.arnOfUrl(input.QueueUrl, r.region);
    return { arn, queue: this.model.byArn(arn) };
  }

  private existing(q: Queue | undefined): Queue {
    if (!q) throw new AwsApiError('QueueDoesNotExist', 'The specified queue does not exist.');
    return q;
  }

  private async dispatch(
    op: string,
    input: Input,
    r: ServiceRequest,
    records: NewCallRecord[],
  ): Promise<unknown> {
    switch (op) {
      case 'CreateQueue': {
        const name = String(input.QueueName ?? '');
        if (!/^[A-Za-z0-9_-]{1,80}(\.fifo)?$/.test(name)) {
          throw new AwsApiError('InvalidParameterValue', `invalid queue name "${name}"`);
        }
        const tags = (input.tags ?? {}) as Record<string, string>;
        const arn = this.queueArn(r.region, name);
        const tagContext = tagKeys(tags);
        this.record(records, 'CreateQueue', arn, r.region, tagContext);
        // Tagging on creation is authorized as TagQueue as well.
        if (Object.keys(tags).length) this.record(records, 'TagQueue', arn, r.region, tagContext);
        const q = this.model.create(
          name,
          this.queueUrl(r.region, name),
          arn,
          (input.Attributes ?? {}) as Record<string, string>,
          tags,
        );
        return { QueueUrl: q.url };
      }
      case 'GetQueueUrl': {
        const name = String(input.QueueName ?? '');
        const account = String(input.QueueOwnerAWSAccountId ?? this.ctx.account);
        const arn = `arn:${this.ctx.partition}:sqs:${r.region}:${account}:${name}`;
        this.record(records, 'GetQueueUrl', arn, r.region);
        return { QueueUrl: this.existing(this.model.byArn(arn)).url };
      }
      case 'DeleteQueue': {
        const { arn, queue } = this.queueOf(input, r);
        this.record(records, 'DeleteQueue', arn, r.region);
        this.model.delete(this.existing(queue).url);
        return {};
      }
      case 'ListQueues': {
        this.record(records, 'ListQueues', '*', r.region);
        const prefix = String(input.QueueNamePrefix ?? '');
        const regionPrefix = `arn:${this.ctx.partition}:sqs:${r.region}:${this.ctx.account}:`;
        const urls = this.model
          .list(prefix)
          .filter((q) => q.arn.startsWith(regionPrefix))
          .map((q) => q.url);
        return { QueueUrls: urls.slice(0, Number(input.MaxResults ?? 1000)) };
      }
      case 'ListQueueTags': {
        const { arn, queue } = this.queueOf(input, r);
        this.record(records, 'ListQueueTags', arn, r.region);
        return { Tags: { ...this.existing(queue).tags } };
      }
      case 'TagQueue': {
        const { arn, queue } = this.queueOf(input, r);
        const tags = (input.Tags ?? {}) as Record<string, string>;
        this.record(records, 'TagQueue', arn, r.region, tagKeys(tags));
        this.model.tag(this.existing(queue).url, tags);
        return {};
      }
      case 'UntagQueue': {
        const { arn, queue } = this.queueOf(input, r);
        const keys = (input.TagKeys ?? []) as string[];
        this.record(records, 'UntagQueue', arn, r.region, { 'aws:TagKeys': keys });
        this.model.untag(this.existing(queue).url, keys);
        return {};
      }
      case 'GetQueueAttributes': {
        const { arn, queue } = this.queueOf(input, r);
        this.record(records, 'GetQueueAttributes', arn, r.region);
        return {
          Attributes: this.attributes(this.existing(queue), (input.AttributeNames ?? []) as string[]),
        };
      }
      case 'SetQueueAttributes': {
        const { arn, queue } = this.queueOf(input, r);
        this.record(records, 'SetQueueAttributes', arn, r.region);
        Object.assign(this.existing(queue).attributes, input.Attributes ?? {});
        return {};
      }
      case 'PurgeQueue': {
        const { arn, queue } = this.queueOf(input, r);
        this.record(records, 'PurgeQueue', arn, r.region);
        this.existing(queue).messages = [];
        return {};
      }
      case 'SendMessage': {
        const { arn, queue } = this.queueOf(input, r);
        this.record(records, 'SendMessage', arn, r.region);
        const body = String(input.MessageBody ?? '');
        const m = this.model.send(
          this.existing(queue).url,
          body,
          input.MessageAttributes as Record<string, MessageAttributeValue> | undefined,
        );
        return { MessageId: m?.id, MD5OfMessageBody: md5Hex(body) };
      }
      case 'ReceiveMessage':
        return this.receive(input, r, records);
      case 'DeleteMessage': {
        const { arn, queue } = this.queueOf(input, r);
        this.record(records, 'DeleteMessage', arn, r.region);
        this.model.deleteMessage(this.existing(queue).url, input.ReceiptHandle as string);
        return {};
      }
      case 'DeleteMessageBatch': {
        const { arn, queue } = this.queueOf(input, r);
        this.record(records, 'DeleteMessage', arn, r.region);
        const q = this.existing(queue);
        const entries = (input.Entries ?? []) as { Id: string; ReceiptHandle: string }[];
        for (const e of entries) this.model.deleteMessage(q.url, e.ReceiptHandle);
        return { Successful: entries.map((e) => ({ Id: e.Id })), Failed: [] };
      }
      case 'ChangeMessageVisibility': {
        const { arn, queue } = this.queueOf(input, r);
        this.record(records, 'ChangeMessageVisibility', arn, r.region);
        const ok = this.model.changeVisibility(
          this.existing(queue).url,
          input.ReceiptHandle as string,
          Number(input.VisibilityTimeout ?? 0),
        );
        if (!ok) throw new AwsApiError('ReceiptHandleIsInvalid', 'The receipt handle is not valid.');
        return {};
      }
      case 'ChangeMessageVisibilityBatch': {
        const { arn, queue } = this.queueOf(input, r);
        this.record(records, 'ChangeMessageVisibility', arn, r.region);
        const q = this.existing(queue);
        const entries = (input.Entries ?? []) as {
          Id: string;
          ReceiptHandle: string;
          VisibilityTimeout?: number;
        }[];
        const ok: { Id: string }[] = [];
        const failed: { Id: string; SenderFault: boolean; Code: string; Message: string }[] = [];
        for (const e of entries) {
          if (this.model.changeVisibility(q.url, e.ReceiptHandle, Number(e.VisibilityTimeout ?? 0)))
            ok.push({ Id: e.Id });
          else
            failed.push({
              Id: e.Id,
              SenderFault: true,
              Code: 'ReceiptHandleIsInvalid',
              Message: 'invalid receipt',
            });
        }
        return { Successful: ok, Failed: failed };
      }
      default:
        throw new AwsApiError('UnsupportedOperation', `the stand-in does not implement SQS ${op}`);
    }
  }

  private async receive(input: Input, r: ServiceRequest, records: NewCallRecord[]): Promise<unknown> {
    const { arn, queue } = this.queueOf(input, r);
    this.record(records, 'ReceiveMessage', arn, r.region);
    const q = this.existing(queue);
    const max = Math.min(10, Number(input.MaxNumberOfMessages ?? 1));
    const visibility = input.VisibilityTimeout === undefined ? undefined : Number(input.VisibilityTimeout);
    const waitSeconds = Number(input.WaitTimeSeconds ?? q.attributes.ReceiveMessageWaitTimeSeconds ?? 0);
    const deadline = Date.now() + waitSeconds * 1000;
    let got = this.model.receive(q.url, { max, visibilitySeconds: visibility });
    // Long polling: wait for a send, a visibility change, or the next message to become visible.
    while (
      got.length === 0 &&
      Date.now() < deadline &&
      !this.ctx.stopping.aborted &&
      !r.req.socket.destroyed
    ) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(250, Math.max(0, deadline - Date.now())));
        const off = this.model.onChange(done);
        const stopping = this.ctx.stopping;
        stopping.addEventListener('abort', done, { once: true });
        function done() {
          clearTimeout(timer);
          off();
          stopping.removeEventListener('abort', done);
          resolve();
        }
      });
      if (!this.model.get(q.url))
        throw new AwsApiError('QueueDoesNotExist', 'The specified queue does not exist.');
      got = this.model.receive(q.url, { max, visibilitySeconds: visibility });
    }
    const systemNames = [
      ...((input.AttributeNames ?? []) as string[]),
      ...((input.MessageSystemAttributeNames ?? []) as string[]),
    ];
    const attrNames = (input.MessageAttributeNames ?? []) as string[];
    return {
      Messages: got.map(({ message: m, receipt }) => {
        const system: Record<string, string> = {
          ApproximateReceiveCount: String(m.receives),
          SentTimestamp: String(m.sentAt),
          ApproximateFirstReceiveTimestamp: String(m.firstReceivedAt ?? m.sentAt),
          SenderId: this.ctx.account,
        };
        const wantAll = systemNames.includes('All');
        const attributes = Object.fromEntries(
          Object.entries(system).filter(([k]) => wantAll || systemNames.includes(k)),
        );
        const wantAllAttrs = attrNames.includes('All') || attrNames.includes('.*');
        const messageAttributes = Object.fromEntries(
          Object.entries(m.attributes ?? {}).filter(([k]) => wantAllAttrs || attrNames.includes(k)),
        );
        return {
          MessageId: m.id,
          ReceiptHandle: receipt,
          MD5OfBody: md5Hex(m.body),
          Body: m.body,
          ...(Object.keys(attributes).length ? { Attributes: attributes } : {}),
          ...(Object.keys(messageAttributes).length ? { MessageAttributes: messageAttributes } : {}),
        };
      }),
    };
  }

  private attributes(q: Queue, names: readonly string[]): Record<string, string> {
    const counts = this.model.counts(q.url);
    const all: Record<string, string> = {
      ...q.attributes,
      QueueArn: q.arn,
      CreatedTimestamp: String(Math.floor(q.createdAt / 1000)),
      ApproximateNumberOfMessages: String(counts.visible),
      ApproximateNumberOfMessagesNotVisible: String(counts.inFlight),
      ApproximateNumberOfMessagesDelayed: String(counts.delayed),
    };
    if (names.length === 0 || names.includes('All')) return all;
    return Object.fromEntries(Object.entries(all).filter(([k]) => names.includes(k)));
  }
}

function tagKeys(tags: Record<string, string>): Record<string, string | string[]> {
  const keys = Object.keys(tags);
  if (keys.length === 0) return {};
  return {
    'aws:TagKeys': keys,
    ...Object.fromEntries(keys.map((k) => [`aws:RequestTag/${k}`, tags[k] as string])),
  };
}

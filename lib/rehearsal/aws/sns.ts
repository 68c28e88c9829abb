import { randomUUID } from 'node:crypto';
import type { ServiceHandler, ServiceRequest, StandInContext } from './context.ts';
import { AwsApiError, requestId, sendXml, xmlEscape } from './http.ts';
import type { KmsStandIn } from './kms.ts';
import type { MessageAttributeValue } from './queue-model.ts';
import type { NewCallRecord } from './record.ts';
import type { SqsStandIn } from './sqs.ts';

const NS = 'http://sns.amazonaws.com/doc/2010-03-31/';

interface Subscription {
  readonly arn: string;
  readonly topicArn: string;
  readonly protocol: string;
  readonly endpoint: string;
  readonly attributes: Record<string, string>;
}

export interface SnsStandInOptions {
  /** Topics encrypted with a KMS key (topic ARN → key id, alias or ARN): publishers need the key too. */
  readonly topicKeys?: Readonly<Record<string, string>>;
}

/**
 * SNS over the AWS query protocol (form-encoded `Action=…`, XML answers). Publish fans out to
 * the subscribed SQS queues of the stand-in, raw or in the SNS envelope as each subscription asks.
 */
export class SnsStandIn implements ServiceHandler {
  private readonly subscriptions = new Map<string, Subscription>();

  constructor(
    private readonly ctx: StandInContext,
    private readonly sqs: SqsStandIn,
    private readonly kms: KmsStandIn,
    private readonly opts: SnsStandInOptions = {},
  ) {}

  async handle(r: ServiceRequest): Promise<void> {
    const params = new URLSearchParams(r.body.toString('utf8'));
    const action = params.get('Action') ?? '';
    const records: NewCallRecord[] = [];
    try {
      const result = this.dispatch(action, params, r, records);
      for (const rec of records) this.ctx.recorder.write(rec, 'ok', r.principal);
      sendXml(
        r.res,
        200,
        `<${action}Response xmlns="${NS}"><${action}Result>${result}</${action}Result>` +
          `<ResponseMetadata><RequestId>${requestId()}</RequestId></ResponseMetadata></${action}Response>`,
      );
    } catch (err) {
      const e = err instanceof AwsApiError ? err : new AwsApiError('InternalError', String(err), 500);
      for (const rec of records) this.ctx.recorder.write(rec, e.code, r.principal);
      sendXml(
        r.res,
        e.status,
        `<ErrorResponse xmlns="${NS}"><Error><Type>${e.status >= 500 ? 'Receiver' : 'Sender'}</Type>` +
          `<Code>${xmlEscape(e.code)}</Code><Message>${xmlEscape(e.message)}</Message></Error>` +
          `<RequestId>${requestId()}</RequestId></ErrorResponse>`,
      );
    }
  }

  private dispatch(action: string, p: URLSearchParams, r: ServiceRequest, records: NewCallRecord[]): string {
    const record = (act: string, resource: string, context = {}) =>
      records.push({ service: 'sns', action: `sns:${act}`, resource, region: r.region, context });
    switch (action) {
      case 'Publish': {
        const topicArn = this.topic(p.get('TopicArn') ?? p.get('TargetArn'));
        record('Publish', topicArn);
        const key = this.opts.topicKeys?.[topicArn];
        // SNS encrypts with the topic's key using the publisher's own permissions.
        if (key)
          records.push(
            this.kms.viaServiceRecord('GenerateDataKey', key, `sns.${r.region}.amazonaws.com`, r.region),
          );
        const messageId = randomUUID();
        this.fanOut(
          topicArn,
          messageId,
          p.get('Message') ?? '',
          p.get('Subject') ?? undefined,
          entries(p, 'MessageAttributes'),
        );
        return `<MessageId>${messageId}</MessageId>`;
      }
      case 'Subscribe': {
        const topicArn = this.topic(p.get('TopicArn'));
        const protocol = p.get('Protocol') ?? '';
        const endpoint = p.get('Endpoint') ?? '';
        record('Subscribe', topicArn, { 'sns:Protocol': protocol, 'sns:Endpoint': endpoint });
        if (protocol !== 'sqs')
          throw new AwsApiError('InvalidParameter', `the stand-in delivers to sqs only, not ${protocol}`);
        const existing = [...this.subscriptions.values()].find(
          (s) => s.topicArn === topicArn && s.endpoint === endpoint,
        );
        const arn = existing?.arn ?? `${topicArn}:${randomUUID()}`;
        const attributes = Object.fromEntries(
          [...entries(p, 'Attributes', 'key', 'value')].map(([k, v]) => [k, v.StringValue ?? '']),
        );
        this.subscriptions.set(arn, { arn, topicArn, protocol, endpoint, attributes });
        return `<SubscriptionArn>${xmlEscape(arn)}</SubscriptionArn>`;
      }
      case 'Unsubscribe': {
        const arn = p.get('SubscriptionArn') ?? '';
        record('Unsubscribe', arn.slice(0, arn.lastIndexOf(':')));
        if (!this.subscriptions.delete(arn)) throw new AwsApiError('NotFound', `no subscription ${arn}`, 404);
        return '';
      }
      case 'ListSubscriptionsByTopic': {
        const topicArn = this.topic(p.get('TopicArn'));
        record('ListSubscriptionsByTopic', topicArn);
        const members = [...this.subscriptions.values()]
          .filter((s) => s.topicArn === topicArn)
          .map(
            (s) =>
              `<member><SubscriptionArn>${xmlEscape(s.arn)}</SubscriptionArn><TopicArn>${xmlEscape(s.topicArn)}</TopicArn>` +
              `<Protocol>${s.protocol}</Protocol><Endpoint>${xmlEscape(s.endpoint)}</Endpoint><Owner>${this.ctx.account}</Owner></member>`,
          );
        return `<Subscriptions>${members.join('')}</Subscriptions>`;
      }
      default:
        throw new AwsApiError('InvalidAction', `the stand-in does not implement SNS ${action}`);
    }
  }

  private topic(arn: string | null): string {
    if (!arn || !/^arn:[^:]+:sns:[^:]+:\d{12}:[A-Za-z0-9_-]+(\.fifo)?$/.test(arn)) {
      throw new AwsApiError('InvalidParameter', `not a topic ARN: ${arn}`);
    }
    return arn;
  }

  private fanOut(
    topicArn: string,
    messageId: string,
    message: string,
    subject: string | undefined,
    attributes: Map<string, MessageAttributeValue>,
  ): void {
    for (const sub of this.subscriptions.values()) {
      if (sub.topicArn !== topicArn || !matchesFilter(sub.attributes, attributes, message)) continue;
      const queue = this.sqs.model.byArn(sub.endpoint);
      const region = sub.endpoint.split(':')[3] ?? this.ctx.defaultRegion;
      const policy = queue?.attributes.Policy;
      this.ctx.recorder.write(
        {
          service: 'sqs',
          action: 'sqs:SendMessage',
          resource: sub.endpoint,
          region,
          principal: 'sns.amazonaws.com',
          context: { 'aws:SourceArn': topicArn, 'aws:SourceAccount': topicArn.split(':')[4] ?? '' },
          resourcePolicy: policy ? JSON.parse(policy) : undefined,
        },
        queue ? 'ok' : 'QueueDoesNotExist',
      );
      if (!queue) continue;
      if (sub.attributes.RawMessageDelivery === 'true') {
        this.sqs.model.send(queue.url, message, Object.fromEntries(attributes));
      } else {
        this.sqs.model.send(
          queue.url,
          JSON.stringify(this.envelope(sub, topicArn, messageId, message, subject, attributes)),
        );
      }
    }
  }

  private envelope(
    sub: Subscription,
    topicArn: string,
    messageId: string,
    message: string,
    subject: string | undefined,
    attributes: Map<string, MessageAttributeValue>,
  ) {
    return {
      Type: 'Notification',
      MessageId: messageId,
      TopicArn: topicArn,
      ...(subject ? { Subject: subject } : {}),
      Message: message,
      Timestamp: new Date().toISOString(),
      SignatureVersion: '1',
      Signature: 'rehearsal-stand-in',
      SigningCertURL: `${this.ctx.publicUrl}/sns/cert.pem`,
      UnsubscribeURL: `${this.ctx.publicUrl}/sns/unsubscribe?SubscriptionArn=${encodeURIComponent(sub.arn)}`,
      ...(attributes.size
        ? {
            MessageAttributes: Object.fromEntries(
              [...attributes].map(([k, v]) => [
                k,
                { Type: v.DataType ?? 'String', Value: v.StringValue ?? '' },
              ]),
            ),
          }
        : {}),
    };
  }
}

/** The query protocol's maps: `<name>.entry.N.Name` + `.Value.DataType/.StringValue`, or `.key`/`.value`. */
function entries(
  p: URLSearchParams,
  name: string,
  keyField = 'Name',
  valueField = 'Value',
): Map<string, MessageAttributeValue> {
  const out = new Map<string, MessageAttributeValue>();
  for (let i = 1; p.has(`${name}.entry.${i}.${keyField}`); i++) {
    const key = p.get(`${name}.entry.${i}.${keyField}`) as string;
    const plain = p.get(`${name}.entry.${i}.${valueField}`);
    out.set(
      key,
      plain !== null
        ? { DataType: 'String', StringValue: plain }
        : {
            DataType: p.get(`${name}.entry.${i}.${valueField}.DataType`) ?? 'String',
            StringValue: p.get(`${name}.entry.${i}.${valueField}.StringValue`) ?? undefined,
          },
    );
  }
  return out;
}

/** SNS filter policies: exact strings and numbers, `exists`, `prefix` and `anything-but`, on attributes or body. */
function matchesFilter(
  subAttributes: Record<string, string>,
  attributes: Map<string, MessageAttributeValue>,
  message: string,
): boolean {
  if (!subAttributes.FilterPolicy) return true;
  const policy = JSON.parse(subAttributes.FilterPolicy) as Record<string, unknown[]>;
  let values: Record<string, unknown> = Object.fromEntries(
    [...attributes].map(([k, v]) => [k, v.StringValue]),
  );
  if (subAttributes.FilterPolicyScope === 'MessageBody') {
    try {
      values = JSON.parse(message) as Record<string, unknown>;
    } catch {
      return false;
    }
  }
  return Object.entries(policy).every(([key, allowed]) => {
    const value = values[key];
    return allowed.some((rule) => {
      if (typeof rule === 'string' || typeof rule === 'number') return String(rule) === String(value);
      if (rule && typeof rule === 'object') {
        const r = rule as Record<string, unknown>;
        if ('exists' in r) return (value !== undefined) === r.exists;
        if (typeof r.prefix === 'string') return typeof value === 'string' && value.startsWith(r.prefix);
        if ('anything-but' in r) {
          const but = ([] as unknown[]).concat(r['anything-but']).map(String);
          return value !== undefined && !but.includes(String(value));
        }
      }
      return false;
    });
  });
}

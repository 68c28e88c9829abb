/**
 * SQS queue semantics in memory: visibility timeouts, receive counts, redrive to a dead-letter
 * queue, tags and attributes. Shared by the rehearsal's AWS stand-in (behind HTTP) and the
 * replication tests' in-process fake (behind aws-sdk-client-mock), so both behave alike.
 */

export interface MessageAttributeValue {
  readonly DataType?: string;
  readonly StringValue?: string;
}

export interface QueuedMessage {
  readonly id: string;
  readonly body: string;
  readonly attributes?: Readonly<Record<string, MessageAttributeValue>>;
  readonly sentAt: number;
  receipt: string;
  visibleAt: number;
  receives: number;
  firstReceivedAt?: number;
}

export interface Queue {
  readonly name: string;
  readonly url: string;
  readonly arn: string;
  readonly createdAt: number;
  tags: Record<string, string>;
  attributes: Record<string, string>;
  messages: QueuedMessage[];
}

export interface ReceivedMessage {
  readonly message: QueuedMessage;
  readonly receipt: string;
}

export class QueueModel {
  private readonly queues = new Map<string, Queue>();
  private seq = 0;
  private readonly listeners = new Set<() => void>();

  /** Creates the queue, or returns the existing one of that URL (CreateQueue is idempotent). */
  create(
    name: string,
    url: string,
    arn: string,
    attributes: Record<string, string> = {},
    tags: Record<string, string> = {},
  ): Queue {
    const existing = this.queues.get(url);
    if (existing) return existing;
    const q: Queue = {
      name,
      url,
      arn,
      createdAt: Date.now(),
      tags: { ...tags },
      attributes: { VisibilityTimeout: '30', ...attributes },
      messages: [],
    };
    this.queues.set(url, q);
    return q;
  }

  get(url: string): Queue | undefined {
    return this.queues.get(url);
  }

  byArn(arn: string): Queue | undefined {
    return [...this.queues.values()].find((q) => q.arn === arn);
  }

  byName(name: string): Queue[] {
    return [...this.queues.values()].filter((q) => q.name === name);
  }

  delete(url: string): boolean {
    return this.queues.delete(url);
  }

  list(prefix = ''): Queue[] {
    return [...this.queues.values()].filter((q) => q.name.startsWith(prefix));
  }

  send(
    url: string,
    body: string,
    attributes?: Record<string, MessageAttributeValue>,
  ): QueuedMessage | undefined {
    const q = this.queues.get(url);
    if (!q) return undefined;
    const delay = Number(q.attributes.DelaySeconds ?? 0);
    const m: QueuedMessage = {
      id: `m-${++this.seq}`,
      body,
      attributes,
      sentAt: Date.now(),
      receipt: '',
      visibleAt: Date.now() + delay * 1000,
      receives: 0,
    };
    q.messages.push(m);
    this.notify();
    return m;
  }

  /**
   * Takes up to `max` visible messages, making them invisible for the visibility timeout; a
   * message already received `maxReceiveCount` times moves to the redrive target instead.
   */
  receive(
    url: string,
    opts: { max?: number; visibilitySeconds?: number; now?: number } = {},
  ): ReceivedMessage[] {
    const q = this.queues.get(url);
    if (!q) return [];
    const now = opts.now ?? Date.now();
    const visibility = opts.visibilitySeconds ?? Number(q.attributes.VisibilityTimeout ?? 30);
    const redrive = parseRedrive(q.attributes.RedrivePolicy);
    const out: ReceivedMessage[] = [];
    for (const m of [...q.messages]) {
      if (out.length >= (opts.max ?? 1)) break;
      if (m.visibleAt > now) continue;
      if (redrive && m.receives >= redrive.maxReceiveCount) {
        const dlq = this.byArn(redrive.deadLetterTargetArn);
        q.messages = q.messages.filter((x) => x !== m);
        if (dlq) dlq.messages.push({ ...m, receipt: '', visibleAt: now });
        continue;
      }
      m.receives += 1;
      m.firstReceivedAt ??= now;
      m.receipt = `r-${++this.seq}-${m.id}`;
      m.visibleAt = now + visibility * 1000;
      out.push({ message: m, receipt: m.receipt });
    }
    return out;
  }

  /** Deletes by receipt handle; false when no message holds that receipt. */
  deleteMessage(url: string, receipt: string | undefined): boolean {
    const q = this.queues.get(url);
    if (!q) return false;
    const before = q.messages.length;
    q.messages = q.messages.filter((m) => m.receipt !== receipt);
    return q.messages.length < before;
  }

  changeVisibility(url: string, receipt: string | undefined, seconds: number): boolean {
    const m = this.queues.get(url)?.messages.find((x) => x.receipt === receipt);
    if (!m) return false;
    m.visibleAt = Date.now() + seconds * 1000;
    if (seconds === 0) this.notify();
    return true;
  }

  tag(url: string, tags: Record<string, string>): void {
    const q = this.queues.get(url);
    if (q) Object.assign(q.tags, tags);
  }

  untag(url: string, keys: readonly string[]): void {
    const q = this.queues.get(url);
    if (q) for (const k of keys) delete q.tags[k];
  }

  /** Approximate counts as GetQueueAttributes reports them. */
  counts(url: string, now = Date.now()): { visible: number; inFlight: number; delayed: number } {
    const msgs = this.queues.get(url)?.messages ?? [];
    const inFlight = msgs.filter((m) => m.receives > 0 && m.visibleAt > now).length;
    const delayed = msgs.filter((m) => m.receives === 0 && m.visibleAt > now).length;
    return { visible: msgs.length - inFlight - delayed, inFlight, delayed };
  }

  /** Called after any change that may make a message visible (long polls wait on it). */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }
}

function parseRedrive(
  policy: string | undefined,
): { deadLetterTargetArn: string; maxReceiveCount: number } | undefined {
  if (!policy) return undefined;
  try {
    const p = JSON.parse(policy) as { deadLetterTargetArn?: string; maxReceiveCount?: number | string };
    if (!p.deadLetterTargetArn || !p.maxReceiveCount) return undefined;
    return { deadLetterTargetArn: p.deadLetterTargetArn, maxReceiveCount: Number(p.maxReceiveCount) };
  } catch {
    return undefined;
  }
}

import { randomUUID } from 'node:crypto';
import { MalformedEventError, UnknownEventTypeError } from './errors.ts';
import { type EdgeEvent, EVENT_TYPES, type EventOf, type EventType, eventSchema } from './schema.ts';

/** Field names that would carry key material; refused wherever they appear in an event. */
const KEY_MATERIAL = new Set(['privkey_pem', 'privateKey', 'private_key', 'privateKeyPem']);

/** The paths of fields in `input` that the parsed `output` dropped (unknown to this schema). */
function droppedFields(input: unknown, output: unknown, path = ''): string[] {
  if (typeof input !== 'object' || input === null || typeof output !== 'object' || output === null) return [];
  const out: string[] = [];
  for (const [k, v] of Object.entries(input)) {
    const p = path ? `${path}.${k}` : k;
    if (!(k in output)) out.push(p);
    else out.push(...droppedFields(v, (output as Record<string, unknown>)[k], p));
  }
  return out;
}

const KNOWN_TYPES = new Set<string>(EVENT_TYPES);

/**
 * Parses a message body; throws MalformedEventError with a reason a person can act on. Unknown
 * fields are dropped (a newer publisher may add some); key material is refused. A JSON object
 * with a string `type` this reader does not know throws UnknownEventTypeError: a newer event.
 */
export function decodeEvent(body: string): EdgeEvent {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch (err) {
    throw new MalformedEventError(`body is not JSON: ${(err as Error).message}`);
  }
  const { type, id } = (typeof doc === 'object' && doc !== null ? doc : {}) as {
    type?: unknown;
    id?: unknown;
  };
  if (typeof type === 'string' && !KNOWN_TYPES.has(type)) {
    throw new UnknownEventTypeError(
      type.slice(0, 128),
      typeof id === 'string' ? id.slice(0, 128) : undefined,
    );
  }
  const payload = (doc as { payload?: unknown } | null)?.payload;
  if (typeof payload === 'object' && payload !== null) {
    const secret = Object.keys(payload).find((k) => KEY_MATERIAL.has(k));
    if (secret)
      throw new MalformedEventError(
        `not a valid event: payload.${secret}: key material never travels in an event`,
      );
  }
  const result = eventSchema.safeParse(doc);
  if (!result.success) {
    const why = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new MalformedEventError(`not a valid event: ${why}`);
  }
  return result.data;
}

/** Writers stay strict: what this code base publishes has no field its own readers would drop. */
function strictParse(doc: unknown): EdgeEvent {
  const parsed = eventSchema.parse(doc);
  const dropped = droppedFields(doc, parsed);
  if (dropped.length)
    throw new MalformedEventError(`unknown fields in an outgoing event: ${dropped.join(', ')}`);
  return parsed;
}

export function encodeEvent(event: EdgeEvent): string {
  return JSON.stringify(strictParse(event));
}

/** A new event with a fresh id and the current time. */
export function makeEvent<T extends EventType>(
  type: T,
  version: number,
  payload: EventOf<T>['payload'],
): EventOf<T> {
  return strictParse({
    id: randomUUID(),
    type,
    version,
    time: new Date().toISOString(),
    payload,
  }) as EventOf<T>;
}

/**
 * The entity whose version an event orders. A cache.purge is keyed by its target so purges of
 * different scopes never shadow each other (and the edge makes their replay idempotent anyway).
 */
export function entityOf(event: EdgeEvent): string {
  switch (event.type) {
    case 'domain.upserted':
    case 'domain.removed':
    case 'domain.status':
      return `domain:${event.payload.domain}`;
    case 'tenant.upserted':
    case 'tenant.removed':
      return `tenant:${event.payload.id}`;
    case 'cert.issued':
    case 'cert.revoked':
      return `cert:${event.payload.domain}`;
    case 'cache.purge':
      return `purge:${event.payload.tenant}`;
  }
}

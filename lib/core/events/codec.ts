import { randomUUID } from 'node:crypto';
import { MalformedEventError } from './errors.ts';
import { type EdgeEvent, type EventOf, type EventType, eventSchema } from './schema.ts';

/** Parses a message body; throws MalformedEventError with a reason a person can act on. */
export function decodeEvent(body: string): EdgeEvent {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch (err) {
    throw new MalformedEventError(`body is not JSON: ${(err as Error).message}`);
  }
  const result = eventSchema.safeParse(doc);
  if (!result.success) {
    const why = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new MalformedEventError(`not a valid event: ${why}`);
  }
  return result.data;
}

export function encodeEvent(event: EdgeEvent): string {
  return JSON.stringify(eventSchema.parse(event));
}

/** A new event with a fresh id and the current time. */
export function makeEvent<T extends EventType>(
  type: T,
  version: number,
  payload: EventOf<T>['payload'],
): EventOf<T> {
  return eventSchema.parse({
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

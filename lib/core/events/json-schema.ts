import { z } from 'zod';
import { eventSchema } from './schema.ts';

export const EVENTS_SCHEMA_ID = 'https://edge-cdn.dev/schemas/events.schema.json';

/** The JSON Schema (draft 2020-12) of every event, for publishers in other languages. */
export function eventsJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(eventSchema, { target: 'draft-2020-12', io: 'input' });
  return {
    $schema: schema.$schema,
    $id: EVENTS_SCHEMA_ID,
    title: 'Edge CDN control events',
    description:
      'Events published on the control topic (SNS) or the Redis stream. Every event has id, type, version, ' +
      'time and payload; receivers keep the newest version per entity and ignore duplicates.',
    ...Object.fromEntries(Object.entries(schema).filter(([k]) => k !== '$schema')),
  };
}

export function renderEventsJsonSchema(): string {
  return `${JSON.stringify(eventsJsonSchema(), null, 2)}\n`;
}

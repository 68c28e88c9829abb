// Writes docs/events.schema.json from the zod schema: `npx tsx lib/core/events/generate-schema.ts`.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderEventsJsonSchema } from './json-schema.ts';

export const EVENTS_SCHEMA_PATH = fileURLToPath(new URL('../../../docs/events.schema.json', import.meta.url));

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(EVENTS_SCHEMA_PATH, renderEventsJsonSchema());
  console.log(`wrote ${EVENTS_SCHEMA_PATH}`);
}

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeEvent, encodeEvent, entityOf, makeEvent } from '../../lib/core/events/codec.ts';
import { MalformedEventError, UnknownEventTypeError } from '../../lib/core/events/errors.ts';
import { EVENTS_SCHEMA_PATH } from '../../lib/core/events/generate-schema.ts';
import { renderEventsJsonSchema } from '../../lib/core/events/json-schema.ts';
import { EVENT_TYPES } from '../../lib/core/events/schema.ts';

describe('events', () => {
  it('docs/events.schema.json is what the zod schema generates (run lib/core/events/generate-schema.ts)', () => {
    expect(readFileSync(EVENTS_SCHEMA_PATH, 'utf8')).toBe(renderEventsJsonSchema());
  });

  it('documents every event type in the JSON Schema', () => {
    const schema = JSON.parse(readFileSync(EVENTS_SCHEMA_PATH, 'utf8'));
    const documented = schema.oneOf.map(
      (s: { properties: { type: { const: string } } }) => s.properties.type.const,
    );
    expect(documented.sort()).toEqual([...EVENT_TYPES].sort());
    expect(EVENT_TYPES).toHaveLength(8);
  });

  it('round-trips an event and names the entity its version orders', () => {
    const e = makeEvent('cert.issued', 1_800_000_000, { domain: 'shop.example.com' });
    expect(decodeEvent(JSON.stringify(e))).toEqual(e);
    expect(entityOf(e)).toBe('cert:shop.example.com');
  });

  it('never carries key material: cert.issued takes the domain and nothing else', () => {
    const e = makeEvent('cert.issued', 1, { domain: 'shop.example.com' });
    const withKey = JSON.stringify({ ...e, payload: { domain: 'shop.example.com', privkey_pem: 'x' } });
    expect(() => decodeEvent(withKey)).toThrow(/payload.privkey_pem: key material never travels/);
  });

  it('accepts fields a newer region added, drops them, and still validates the known ones', () => {
    const e = makeEvent('domain.upserted', 7, { domain: 'shop.example.com', tenant: 'acme' });
    const newer = { ...e, trace: 'abc', payload: { ...e.payload, weight: 3, labels: { tier: 'gold' } } };
    expect(decodeEvent(JSON.stringify(newer))).toEqual(e);
    const purge = makeEvent('cache.purge', 9, {
      scope: 'host',
      tenant: 'acme',
      host: 'a.example',
      generation: 9,
    });
    const newerPurge = { ...purge, payload: { ...purge.payload, reason: 'deploy' } };
    expect(decodeEvent(JSON.stringify(newerPurge))).toEqual(purge);
    // Known fields and the version check still hold.
    expect(() => decodeEvent(JSON.stringify({ ...newer, version: -1 }))).toThrow(/version/);
    expect(() =>
      decodeEvent(JSON.stringify({ ...newer, payload: { ...newer.payload, domain: 'Not A Domain' } })),
    ).toThrow(/payload.domain/);
  });

  it('writes strictly: this code base never publishes a field its readers would drop', () => {
    const e = makeEvent('tenant.removed', 1, { id: 'acme' });
    expect(() => encodeEvent({ ...e, payload: { ...e.payload, extra: 1 } } as never)).toThrow(
      /unknown fields in an outgoing event: payload.extra/,
    );
  });

  it('rejects malformed events with a reason', () => {
    expect(() => decodeEvent('nope')).toThrow(MalformedEventError);
    const purge = makeEvent('cache.purge', 5, {
      scope: 'prefix',
      tenant: 'acme',
      prefix: '/blog/',
      generation: 5,
    });
    const bad = JSON.stringify({ ...purge, payload: { ...purge.payload, prefix: 'blog' } });
    expect(() => decodeEvent(bad)).toThrow(/payload.prefix/);
    expect(() => decodeEvent(JSON.stringify({ ...purge, version: -1 }))).toThrow(/version/);
  });

  it('tells an event of a type it does not know (a newer control plane) from a malformed one', () => {
    const body = JSON.stringify({
      id: 'e-1',
      type: 'domain.renamed',
      version: 1,
      time: new Date().toISOString(),
      payload: {},
    });
    expect(() => decodeEvent(body)).toThrow(UnknownEventTypeError);
    expect(() => decodeEvent(body)).toThrow('unknown event type "domain.renamed"');
    // A missing or non-string type is still malformed.
    expect(() => decodeEvent(JSON.stringify({ id: 'e-2', version: 1, payload: {} }))).toThrow(
      MalformedEventError,
    );
    expect(() => decodeEvent(JSON.stringify({ id: 'e-3', type: 7, payload: {} }))).toThrow(
      MalformedEventError,
    );
  });
});

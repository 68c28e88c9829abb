import { beforeAll, expect, it } from 'vitest';
import { makeEvent } from '../../lib/core/events/codec.ts';
import { makeCertRecord } from '../../lib/local/self-signed-cert.ts';
import { TestBed } from '../harness/testbed.ts';
import { ReplicaFixture } from './replica-fixture.ts';

const bed = new TestBed('own-cert');
let fx: ReplicaFixture;

beforeAll(async () => {
  fx = await ReplicaFixture.start(bed);
});

it("lets the edge forget a certificate when the event for the version it already holds arrives (this task's own renewal)", async () => {
  const { applier, forgotten } = fx.replica('own');
  const old = await makeCertRecord(['own.acme.test']);
  const renewed = { ...old, expiry: old.expiry + 30 * 86400 };
  await fx.issue('own.acme.test', old);
  await applier.apply(makeEvent('cert.issued', old.expiry, { domain: 'own.acme.test' }));
  await fx.issue('own.acme.test', renewed);
  const event = makeEvent('cert.issued', renewed.expiry, { domain: 'own.acme.test' });
  expect(await applier.apply(event)).toBe('applied');
  // The same version again: as when this task's issuer wrote it and the redis-listener recorded it.
  expect(await applier.apply(event)).toBe('stale');
  expect(forgotten).toEqual(['own.acme.test', 'own.acme.test', 'own.acme.test']);
  // An older version changes nothing and is not worth a forget.
  expect(await applier.apply(makeEvent('cert.issued', old.expiry, { domain: 'own.acme.test' }))).toBe(
    'stale',
  );
  expect(forgotten).toHaveLength(3);
});

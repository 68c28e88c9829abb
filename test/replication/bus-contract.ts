import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { Bus } from '../../lib/core/bus/port.ts';
import { makeEvent } from '../../lib/core/events/codec.ts';
import { MalformedEventError } from '../../lib/core/events/errors.ts';
import type { EdgeEvent } from '../../lib/core/events/schema.ts';

/** What the contract needs from an adapter's test setup. */
export interface BusFixture {
  /** A bus for one task. */
  bus(taskId: string): Bus;
  /** Publishes a body as is, bypassing the codec. */
  publishRaw(body: string): Promise<void>;
  deadLetters(): Promise<{ reason: string; body: string }[]>;
  subscriptionExists(bus: Bus): Promise<boolean>;
  /** Ages a task's heartbeat past the orphan threshold, as if the task had died long ago. */
  makeStale(bus: Bus): Promise<void>;
}

export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined> | T | undefined,
  ms = 15_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const domainEvent = (domain: string, version = 1) =>
  makeEvent('domain.upserted', version, { domain, tenant: 'acme' });

/** One contract, run against every adapter: delivery, dead letters, retries, lifecycle. */
export function busContract(name: string, fixture: () => BusFixture): void {
  describe(`bus contract: ${name}`, () => {
    const open: Bus[] = [];
    let n = 0;
    const task = async (): Promise<{ bus: Bus; got: EdgeEvent[] }> => {
      const bus = fixture().bus(`task-${name}-${++n}`);
      open.push(bus);
      await bus.open();
      return { bus, got: [] };
    };
    afterEach(async () => {
      await Promise.all(open.splice(0).map((b) => b.close().catch(() => {})));
    });

    it('delivers an event published after open() to every task, including events sent before consume()', async () => {
      const a = await task();
      const b = await task();
      const early = domainEvent('early.example.com');
      await a.bus.publish(early);
      await a.bus.consume(async (e) => void a.got.push(e));
      await b.bus.consume(async (e) => void b.got.push(e));
      const late = domainEvent('late.example.com');
      await a.bus.publish(late);
      await until('both tasks got both events', () => a.got.length === 2 && b.got.length === 2);
      expect(a.got.map((e) => e.id).sort()).toEqual([early.id, late.id].sort());
      expect(b.got).toEqual(a.got);
    });

    it('dead-letters a malformed event with the reason and keeps delivering what follows', async () => {
      const t = await task();
      await t.bus.consume(async (e) => void t.got.push(e));
      await fixture().publishRaw('{"type":"domain.upserted","payload":{}');
      await fixture().publishRaw(JSON.stringify({ ...domainEvent('x.example.com'), payload: {} }));
      const good = domainEvent('after.example.com');
      await t.bus.publish(good);
      await until('the good event', () => t.got.length === 1);
      const dead = await until('two dead letters', async () => {
        const d = await fixture().deadLetters();
        return d.length >= 2 ? d : undefined;
      });
      expect(dead.map((d) => d.reason)).toEqual([
        expect.stringContaining('body is not JSON'),
        expect.stringContaining('not a valid event'),
      ]);
      expect(dead[0]?.body).toBe('{"type":"domain.upserted","payload":{}');
      expect(t.got[0]?.id).toBe(good.id);
      expect(t.bus.stats.deadLettered).toBe(2);
    });

    it("acknowledges and counts an event of a type it does not know (a newer control plane's), never dead-letters it", async () => {
      const t = await task();
      await t.bus.consume(async (e) => void t.got.push(e));
      const before = (await fixture().deadLetters()).length;
      const newer = { ...domainEvent('y.example.com'), type: 'domain.exploded', payload: { anything: 1 } };
      await fixture().publishRaw(JSON.stringify(newer));
      await fixture().publishRaw(JSON.stringify({ ...newer, id: 'second' }));
      const good = domainEvent('after-unknown.example.com');
      await t.bus.publish(good);
      await until('the good event', () => t.got.length === 1);
      await until('both counted', () => t.bus.stats.ignoredByType.get('domain.exploded') === 2);
      expect(t.got.map((e) => e.id)).toEqual([good.id]);
      await sleep(300);
      expect((await fixture().deadLetters()).length).toBe(before);
      expect(t.bus.stats.deadLettered).toBe(0);
    });

    it('retries an event whose handler failed, and dead-letters one the handler rejects', async () => {
      const t = await task();
      let failures = 0;
      await t.bus.consume(async (e) => {
        if (e.type === 'domain.removed') throw new MalformedEventError('domain is not ours');
        if (failures++ < 2) throw new Error('edge unavailable');
        t.got.push(e);
      });
      const retried = domainEvent('retry.example.com');
      await t.bus.publish(retried);
      await t.bus.publish(makeEvent('domain.removed', 2, { domain: 'gone.example.com' }));
      await until('the retried event', () => t.got.length === 1);
      expect(failures).toBe(3);
      expect(t.got[0]?.id).toBe(retried.id);
      const dead = await until('the rejected event', async () => {
        const d = (await fixture().deadLetters()).filter((x) => x.reason === 'domain is not ours');
        return d.length ? d : undefined;
      });
      expect(JSON.parse(dead[0]?.body ?? '{}').payload.domain).toBe('gone.example.com');
    });

    it('deletes the subscription on close, and keeps it when asked', async () => {
      const t = await task();
      await t.bus.consume(async () => {});
      expect(await fixture().subscriptionExists(t.bus)).toBe(true);
      await t.bus.close();
      expect(await fixture().subscriptionExists(t.bus)).toBe(false);
      const k = await task();
      await k.bus.close({ keepSubscription: true });
      expect(await fixture().subscriptionExists(k.bus)).toBe(true);
    });

    it('removes orphans whose heartbeat is stale and leaves live subscriptions alone', async () => {
      const live = await task();
      const dead = await task();
      await dead.bus.close({ keepSubscription: true });
      await fixture().makeStale(dead.bus);
      const removed = await live.bus.removeOrphans();
      expect(removed).toContain(dead.bus.subscriptionName);
      expect(removed).not.toContain(live.bus.subscriptionName);
      expect(await fixture().subscriptionExists(dead.bus)).toBe(false);
      expect(await fixture().subscriptionExists(live.bus)).toBe(true);
    });
  });
}

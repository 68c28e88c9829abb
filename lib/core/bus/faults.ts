import type { EdgeEvent } from '../events/schema.ts';
import type { EventHandler } from './port.ts';

export interface FaultRates {
  /** Probability that an event is delivered twice. */
  readonly duplicate: number;
  /** Probability that an event is held back and delivered after a later one. */
  readonly reorder: number;
  /** Probability that an event is lost (acknowledged without being applied). */
  readonly drop: number;
}

export interface FaultCounts {
  delivered: number;
  duplicated: number;
  reordered: number;
  dropped: number;
}

/** A small seeded PRNG (mulberry32), so a fault run can be replayed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Wraps a handler with the faults at-least-once delivery allows (and a lost message, which only
 * a bootstrap repairs): for chaos tests and the fault bench, never for production wiring.
 */
export function withFaults(
  handler: EventHandler,
  rates: FaultRates,
  random: () => number = Math.random,
): { handler: EventHandler; counts: FaultCounts; flush(): Promise<void> } {
  const counts: FaultCounts = { delivered: 0, duplicated: 0, reordered: 0, dropped: 0 };
  const held: EdgeEvent[] = [];
  const deliver = async (e: EdgeEvent) => {
    counts.delivered += 1;
    await handler(e);
  };
  return {
    counts,
    handler: async (event) => {
      if (random() < rates.drop) {
        counts.dropped += 1;
        return;
      }
      if (random() < rates.reorder) {
        counts.reordered += 1;
        held.push(event);
        return;
      }
      await deliver(event);
      if (random() < rates.duplicate) {
        counts.duplicated += 1;
        await deliver(event);
      }
      // Held events come out after this later one, newest first.
      while (held.length) await deliver(held.pop() as EdgeEvent);
    },
    async flush() {
      while (held.length) await deliver(held.pop() as EdgeEvent);
    },
  };
}

import { decodeEvent } from '../events/codec.ts';
import { MalformedEventError, UnknownEventTypeError } from '../events/errors.ts';
import type { BusLogger, BusStats, EventHandler } from './port.ts';

export type Outcome = 'ack' | 'retry';

export interface DispatchInput {
  readonly body: string;
  /** 1 on first delivery. */
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly handler: EventHandler;
  readonly deadLetter: (body: string, reason: string) => Promise<void>;
  readonly logger: BusLogger;
  readonly stats?: BusStats;
}

/**
 * The delivery rule both adapters follow: a malformed event is dead-lettered with the reason and
 * acknowledged at once (it never blocks what follows); an event of a type this reader does not
 * know (a newer control plane's) is acknowledged, logged and counted; a failing handler is retried
 * until maxAttempts, then dead-lettered with its last error.
 */
export async function dispatch(input: DispatchInput): Promise<Outcome> {
  const { body, attempt, maxAttempts, logger } = input;
  let event: ReturnType<typeof decodeEvent>;
  try {
    event = decodeEvent(body);
  } catch (err) {
    if (err instanceof UnknownEventTypeError) {
      const ignored = input.stats?.ignoredByType;
      ignored?.set(err.type, (ignored.get(err.type) ?? 0) + 1);
      logger.info({ id: err.id, type: err.type }, 'event of an unknown type ignored');
      return 'ack';
    }
    await input.deadLetter(body, (err as Error).message);
    if (input.stats) input.stats.deadLettered += 1;
    logger.warn({ reason: (err as Error).message }, 'malformed event dead-lettered');
    return 'ack';
  }
  try {
    await input.handler(event);
    return 'ack';
  } catch (err) {
    const e = err as Error;
    if (e instanceof MalformedEventError) {
      await input.deadLetter(body, e.message);
      if (input.stats) input.stats.deadLettered += 1;
      logger.warn({ id: event.id, type: event.type, reason: e.message }, 'event rejected, dead-lettered');
      return 'ack';
    }
    if (attempt >= maxAttempts) {
      const reason = `failed ${attempt} times, last error: ${e.message}`;
      await input.deadLetter(body, reason);
      if (input.stats) input.stats.deadLettered += 1;
      logger.error({ id: event.id, type: event.type, err: e }, 'event dead-lettered after retries');
      return 'ack';
    }
    logger.warn({ id: event.id, type: event.type, attempt, err: e }, 'event failed, will retry');
    return 'retry';
  }
}

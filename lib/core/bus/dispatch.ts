import { decodeEvent } from '../events/codec.ts';
import { MalformedEventError } from '../events/errors.ts';
import type { BusLogger, EventHandler } from './port.ts';

export type Outcome = 'ack' | 'retry';

export interface DispatchInput {
  readonly body: string;
  /** 1 on first delivery. */
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly handler: EventHandler;
  readonly deadLetter: (body: string, reason: string) => Promise<void>;
  readonly logger: BusLogger;
}

/**
 * The delivery rule both adapters follow: a malformed event is dead-lettered with the reason and
 * acknowledged at once (it never blocks what follows); a failing handler is retried until
 * maxAttempts, then dead-lettered with its last error.
 */
export async function dispatch(input: DispatchInput): Promise<Outcome> {
  const { body, attempt, maxAttempts, logger } = input;
  let event: ReturnType<typeof decodeEvent>;
  try {
    event = decodeEvent(body);
  } catch (err) {
    await input.deadLetter(body, (err as Error).message);
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
      logger.warn({ id: event.id, type: event.type, reason: e.message }, 'event rejected, dead-lettered');
      return 'ack';
    }
    if (attempt >= maxAttempts) {
      const reason = `failed ${attempt} times, last error: ${e.message}`;
      await input.deadLetter(body, reason);
      logger.error({ id: event.id, type: event.type, err: e }, 'event dead-lettered after retries');
      return 'ack';
    }
    logger.warn({ id: event.id, type: event.type, attempt, err: e }, 'event failed, will retry');
    return 'retry';
  }
}

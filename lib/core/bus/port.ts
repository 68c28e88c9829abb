import type { EdgeEvent } from '../events/schema.ts';

/** Applies one event. Throw MalformedEventError for an event that can never apply; anything else is retried. */
export type EventHandler = (event: EdgeEvent) => Promise<void>;

/** Structured logging the adapters need (pino's signature). */
export interface BusLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** What a bus counts and knows about its own health, for its owner's /metrics and /readyz. */
export interface BusStats {
  /** Events acknowledged unapplied because this reader does not know their type, by type. */
  readonly ignoredByType: Map<string, number>;
  deadLettered: number;
  /** Times this task's subscription was found missing (NOGROUP, a deleted queue) and recreated. */
  resubscribed: number;
  /** When a receive last succeeded (ms since the epoch); 0 before the first. */
  lastReceiveOkMs: number;
  /** The last receive error, cleared by the next success. */
  lastError: string | undefined;
}

export function newBusStats(): BusStats {
  return {
    ignoredByType: new Map(),
    deadLettered: 0,
    resubscribed: 0,
    lastReceiveOkMs: 0,
    lastError: undefined,
  };
}

export interface ConsumeOptions {
  /**
   * Called after the subscription was found missing and recreated: events published meanwhile
   * may never arrive, so the owner repairs from the table (a bootstrap).
   */
  readonly onResubscribed?: (reason: string) => void;
}

export interface EventPublisher {
  publish(event: EdgeEvent): Promise<void>;
}

/**
 * The control-event bus: every task receives every event, at least once, in any order.
 * Lifecycle: open() creates this task's subscription (events are kept for it from then on),
 * the caller bootstraps, consume() starts delivery, close() stops and deletes the subscription.
 */
export interface Bus extends EventPublisher {
  readonly kind: 'aws' | 'redis';
  /** This task's queue or consumer group name. */
  readonly subscriptionName: string;
  readonly stats: BusStats;
  open(): Promise<void>;
  consume(handler: EventHandler, opts?: ConsumeOptions): Promise<void>;
  /** Stops receiving, waits for in-flight handlers, then deletes the subscription unless told to keep it. */
  close(opts?: { keepSubscription?: boolean }): Promise<void>;
  /** Deletes other tasks' subscriptions whose heartbeat is stale; returns their names. */
  removeOrphans(): Promise<string[]>;
}

/** Options every adapter shares. */
export interface SubscriptionOptions {
  /** Attempts before a failing event is dead-lettered with its last error; default 5. */
  readonly maxAttempts?: number;
  /** How often the subscription's heartbeat is refreshed; default 60 s. */
  readonly heartbeatMs?: number;
  /** A subscription whose heartbeat is older than this is an orphan; default 10 min. */
  readonly staleAfterMs?: number;
  readonly logger?: BusLogger;
}

export const DEFAULTS = { maxAttempts: 5, heartbeatMs: 60_000, staleAfterMs: 600_000 } as const;

export const silentLogger: BusLogger = { info() {}, warn() {}, error() {} };

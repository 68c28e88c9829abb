import type { Logger } from 'pino';
import type { HealthServer } from './health.ts';

export interface ShutdownOptions {
  readonly log: Logger;
  /** Fails readiness before anything else stops, so no new work is routed here. */
  readonly health?: HealthServer;
  /** Finishes in-flight work and closes clients; the runtime exits when it settles. */
  readonly stop: () => Promise<void>;
  /** The hard deadline: past it the process exits 1, whatever is still running. */
  readonly deadlineMs: number;
}

/**
 * The one shutdown path: on SIGTERM/SIGINT fail readiness, run `stop` under a hard deadline, exit
 * 0 when it settles (1 on failure or at the deadline); a second signal exits at once.
 */
export function onShutdown(opts: ShutdownOptions): void {
  const { log, health, stop, deadlineMs } = opts;
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal, exiting now');
      process.exit(1);
    }
    stopping = true;
    health?.setReady(false, { reason: 'shutting down' });
    log.info({ signal, deadlineMs }, 'shutting down');
    const timer = setTimeout(() => {
      log.error({ deadlineMs }, 'shutdown deadline passed, exiting');
      process.exit(1);
    }, deadlineMs);
    timer.unref();
    stop()
      .then(() => health?.stop())
      .then(
        () => {
          log.info('stopped');
          process.exit(0);
        },
        (err) => {
          log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}

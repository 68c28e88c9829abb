import { podman } from './podman.ts';
import type { HealthCheck } from './task-definition.ts';

export type HealthStatus = 'UNKNOWN' | 'HEALTHY' | 'UNHEALTHY';

/** The argv `podman exec` runs for an ECS health-check command. */
export function healthArgv(command: readonly string[]): string[] {
  const [kind, ...rest] = command;
  if (kind === 'CMD') return rest;
  if (kind === 'CMD-SHELL') return ['/bin/sh', '-c', rest.join(' ')];
  throw new Error(`health check command must start with CMD or CMD-SHELL, got ${JSON.stringify(command)}`);
}

/**
 * ECS's health-check state machine for one container: a check every interval, each bounded by
 * its timeout; within the start period failures do not count and the first success makes it
 * HEALTHY; otherwise `retries` consecutive failures make it UNHEALTHY.
 */
export class HealthMonitor {
  status: HealthStatus = 'UNKNOWN';
  lastOutput = '';
  private consecutiveFailures = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly startedAt = Date.now();

  constructor(
    private readonly container: string,
    private readonly check: HealthCheck,
    private readonly onChange: (status: HealthStatus) => void,
  ) {}

  start(): void {
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.run(), this.check.intervalSeconds * 1000);
  }

  private async run(): Promise<void> {
    const r = await podman(['exec', this.container, ...healthArgv(this.check.command)], {
      timeoutMs: this.check.timeoutSeconds * 1000,
    });
    if (this.stopped) return;
    this.lastOutput = `${r.stdout}${r.stderr}`.trim().slice(-500);
    const inStartPeriod = Date.now() - this.startedAt < this.check.startPeriodSeconds * 1000;
    if (r.code === 0) {
      this.consecutiveFailures = 0;
      this.set('HEALTHY');
    } else if (!inStartPeriod || this.status === 'HEALTHY') {
      this.consecutiveFailures += 1;
      if (this.consecutiveFailures >= this.check.retries) this.set('UNHEALTHY');
    }
    this.schedule();
  }

  private set(status: HealthStatus): void {
    if (status === this.status) return;
    this.status = status;
    this.onChange(status);
  }
}

import type { HealthStatus } from './health.ts';
import type { ContainerDefinition } from './task-definition.ts';

/** The task stopped (or will never start): a dependency condition can no longer be met. */
export class TaskStoppedError extends Error {
  override name = 'TaskStoppedError';
}

/** What the agent knows of a container when it decides whether another may start. */
export interface DependencyState {
  readonly phase: 'PENDING' | 'RUNNING' | 'STOPPED';
  readonly exitCode?: number;
  readonly health: HealthStatus;
  readonly hasHealthCheck: boolean;
}

type Dependent = Pick<ContainerDefinition, 'name' | 'dependsOn'>;

/**
 * ECS's `dependsOn` for one container: what it still waits for (undefined: it can start now), or
 * a `TaskStoppedError` when a condition can no longer be met (SUCCESS of a container that exited
 * non-zero, HEALTHY of one that stopped, turned unhealthy or has no health check).
 */
export function blockedBy(
  c: Dependent,
  state: (name: string) => DependencyState | undefined,
): string | undefined {
  for (const dep of c.dependsOn) {
    const d = state(dep.containerName);
    if (!d) throw new TaskStoppedError(`${c.name} depends on unknown container ${dep.containerName}`);
    const exited = d.phase === 'STOPPED';
    switch (dep.condition) {
      case 'START':
        if (d.phase === 'PENDING') return `${dep.containerName} to start`;
        break;
      case 'COMPLETE':
        if (!exited) return `${dep.containerName} to complete`;
        break;
      case 'SUCCESS':
        if (exited && d.exitCode !== 0) {
          throw new TaskStoppedError(
            `${c.name} needs ${dep.containerName} to exit 0 (SUCCESS), but it exited ${d.exitCode}`,
          );
        }
        if (!exited) return `${dep.containerName} to succeed`;
        break;
      case 'HEALTHY':
        if (!d.hasHealthCheck) {
          throw new TaskStoppedError(
            `${c.name} needs ${dep.containerName} HEALTHY, which has no health check`,
          );
        }
        if (d.health === 'UNHEALTHY' || exited) {
          throw new TaskStoppedError(
            `${c.name} needs ${dep.containerName} HEALTHY, but it is ${exited ? `stopped (exit ${d.exitCode})` : 'UNHEALTHY'}`,
          );
        }
        if (d.health !== 'HEALTHY') return `${dep.containerName} to be healthy`;
        break;
    }
  }
  return undefined;
}

/**
 * The order ECS stops a task's containers in: waves of containers no other remaining container
 * depends on (a container stops before those it depends on); a cycle stops all that remain at once.
 */
export function stopWaves(containers: readonly Dependent[]): string[][] {
  const remaining = new Map(containers.map((c) => [c.name, c]));
  const waves: string[][] = [];
  while (remaining.size > 0) {
    const wave = [...remaining.keys()].filter(
      (name) =>
        ![...remaining.values()].some((other) => other.dependsOn.some((d) => d.containerName === name)),
    );
    const batch = wave.length > 0 ? wave : [...remaining.keys()];
    waves.push(batch);
    for (const n of batch) remaining.delete(n);
  }
  return waves;
}

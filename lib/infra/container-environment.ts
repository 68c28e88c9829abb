import type * as ecs from 'aws-cdk-lib/aws-ecs';
import {
  type EnvContract,
  type EnvValues,
  type EnvVars,
  environmentFromContract,
} from '../config/env-contract.ts';

/** A container's `environment` and `secrets`, built from its program's contract. */
export interface ContainerEnvironment {
  readonly environment: Record<string, string>;
  /** Absent when the container receives no secret. */
  readonly secrets?: Record<string, ecs.Secret>;
}

/**
 * Builds a container's environment from the contract of the program it runs: `values` is keyed
 * by config field, so a misnamed or missing variable is a type error at `tsc` (and an Error at
 * synth for values built dynamically). Secret fields take an `ecs.Secret`, the rest plain values.
 */
export function containerEnvironment<V extends EnvVars>(
  contract: EnvContract<V>,
  values: NoInfer<EnvValues<V, ecs.Secret>>,
): ContainerEnvironment {
  const { environment, secrets } = environmentFromContract<V, ecs.Secret>(contract, values);
  return Object.keys(secrets).length ? { environment, secrets } : { environment };
}

/** The program a container runs, by its command (`node dist/bin/<program>.js`) or, for images with their own entrypoint, by container name. */
export function programOf(container: {
  readonly name: string;
  readonly command?: readonly string[];
}): string {
  const [exe, script] = container.command ?? [];
  const m = exe === 'node' && script ? /^dist\/bin\/([a-z-]+)\.js$/.exec(script) : null;
  if (m?.[1]) return m[1];
  if (exe === 'redis-server') return 'redis-server';
  return container.name;
}

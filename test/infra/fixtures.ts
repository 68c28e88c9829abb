import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import type { DeploymentConfigInput } from '../../lib/config/deployment-config.ts';
import type { EdgeImages } from '../../lib/infra/edge-images.ts';

export const EXAMPLE_CONFIG_PATH = fileURLToPath(
  new URL('../../config/example.deployment.json', import.meta.url),
);

export function exampleConfig(): DeploymentConfigInput {
  return JSON.parse(readFileSync(EXAMPLE_CONFIG_PATH, 'utf8')) as DeploymentConfigInput;
}

/** The feature flags `cdk synth` uses (cdk.json), so tests see the same templates; bundling off. */
export function cdkContext(): Record<string, unknown> {
  const path = fileURLToPath(new URL('../../cdk.json', import.meta.url));
  const { context } = JSON.parse(readFileSync(path, 'utf8')) as { context: Record<string, unknown> };
  // No asset bundling (the control API's esbuild run) on every synth: the tests that need the
  // bundle (synth.test.ts, control-api.test.ts) ask for it with ['**'].
  return { ...context, 'aws:cdk:bundling-stacks': [] };
}

/** Registry images: synth then skips hashing and staging the Docker build contexts. */
export function registryImages(): EdgeImages {
  return {
    edge: ecs.ContainerImage.fromRegistry('example.invalid/edge:test'),
    sidecars: ecs.ContainerImage.fromRegistry('example.invalid/sidecars:test'),
  };
}

/** A minimal valid config with one region. */
export function oneRegionConfig(overrides: Partial<DeploymentConfigInput> = {}): DeploymentConfigInput {
  return {
    account: '123456789012',
    homeRegion: 'eu-west-1',
    regions: [{ region: 'eu-west-1', availabilityZones: ['eu-west-1a', 'eu-west-1b'] }],
    hostedZone: { id: 'Z0123456789EXAMPLE', name: 'platform.example' },
    platformDomain: 'platform.example',
    geolocation: { default: 'eu-west-1' },
    ...overrides,
  };
}

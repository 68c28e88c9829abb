import { fileURLToPath } from 'node:url';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import type { DeploymentConfig } from '../config/deployment-config.ts';

export interface EdgeImages {
  readonly edge: ecs.ContainerImage;
  readonly sidecars: ecs.ContainerImage;
}

/** The repository root: both Dockerfiles build from it (they need lua/, lib/ and the template). */
const CONTEXT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Prebuilt URIs from the config, else Docker assets. Assets are only hashed and staged at synth;
 * `docker build` runs at `cdk deploy` (publishing), so synth works offline and without Docker.
 */
export function edgeImages(c: DeploymentConfig): EdgeImages {
  const asset = (file: string) =>
    ecs.ContainerImage.fromAsset(CONTEXT, {
      file,
      platform: Platform.LINUX_AMD64,
      exclude: ['node_modules', 'cdk.out', '.git', '.run', 'test', 'bench', 'docs', 'dist', '**/*.log'],
    });
  return {
    edge: c.images.edge
      ? ecs.ContainerImage.fromRegistry(c.images.edge)
      : asset('edge-image/Dockerfile.edge'),
    sidecars: c.images.sidecars
      ? ecs.ContainerImage.fromRegistry(c.images.sidecars)
      : asset('edge-image/Dockerfile.sidecars'),
  };
}

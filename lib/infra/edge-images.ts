import { fileURLToPath } from 'node:url';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import type { DeploymentConfig } from '../config/deployment-config.ts';

export interface EdgeImages {
  readonly edge: ecs.ContainerImage;
  readonly sidecars: ecs.ContainerImage;
}

/**
 * The repository root: both Dockerfiles build from it (they need lua/, lib/ and the template).
 * What goes into the context is decided by `.dockerignore` alone, which the CDK reads (Docker
 * ignore mode) exactly as `docker build` and `podman build` do: no second list here.
 */
export const DOCKER_CONTEXT = fileURLToPath(new URL('../..', import.meta.url));

/** The Dockerfile of each edge base (`images.edgeBase`). */
export const EDGE_DOCKERFILES = {
  debian: 'edge-image/Dockerfile.edge',
  openresty: 'edge-image/Dockerfile.edge-openresty',
} as const;

/**
 * Public base images for builds at `cdk deploy` (a developer machine or CI with Docker and a
 * registry). The Dockerfiles default to the bases scripts/build-images.sh makes locally; the
 * same Dockerfile builds in both places.
 */
export const PUBLIC_BASE_IMAGES = {
  /** Dockerfile.edge's EDGE_BASE_IMAGE. */
  debian: 'debian:trixie-slim',
  /** Dockerfile.sidecars' NODE_IMAGE: Node 24 LTS, the major the tests run on. */
  node: 'node:24-trixie-slim',
} as const;

/**
 * Prebuilt URIs from the config, else Docker assets. Assets are only hashed and staged at synth;
 * `docker build` runs at `cdk deploy` (publishing), so synth works offline and without Docker.
 */
export function edgeImages(c: DeploymentConfig): EdgeImages {
  const asset = (file: string, buildArgs: Record<string, string>) =>
    ecs.ContainerImage.fromAsset(DOCKER_CONTEXT, { file, buildArgs, platform: Platform.LINUX_AMD64 });
  const edgeBase = c.images.edgeBase ?? (c.tlsEngine === 'auto-ssl' ? 'openresty' : 'debian');
  return {
    edge: c.images.edge
      ? ecs.ContainerImage.fromRegistry(c.images.edge)
      : asset(
          EDGE_DOCKERFILES[edgeBase],
          edgeBase === 'debian' ? { EDGE_BASE_IMAGE: PUBLIC_BASE_IMAGES.debian } : {},
        ),
    sidecars: c.images.sidecars
      ? ecs.ContainerImage.fromRegistry(c.images.sidecars)
      : asset('edge-image/Dockerfile.sidecars', { NODE_IMAGE: PUBLIC_BASE_IMAGES.node }),
  };
}

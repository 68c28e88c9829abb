import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import { afterAll, describe, expect, it } from 'vitest';
import { parseDeploymentConfig } from '../../lib/config/deployment-config.ts';
import { DOCKER_CONTEXT, edgeImages, PUBLIC_BASE_IMAGES } from '../../lib/infra/edge-images.ts';
import { cdkContext, oneRegionConfig } from './fixtures.ts';

interface DockerAsset {
  source: { directory: string; dockerFile: string; dockerBuildArgs?: Record<string, string> };
}

// The cloud assembly goes inside the repository, as a synth output folder of a user's would:
// .dockerignore must keep it out of the staged context (else the copy recurses into itself).
const outdir = mkdtempSync(join(DOCKER_CONTEXT, 'synth-out-test-'));
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

function synthAssets(overrides: Parameters<typeof oneRegionConfig>[0] = {}): DockerAsset[] {
  const app = new App({ outdir: join(outdir, String(Math.random()).slice(2)), context: cdkContext() });
  const stack = new Stack(app, 'Images', { env: { account: '123456789012', region: 'eu-west-1' } });
  const images = edgeImages(parseDeploymentConfig(oneRegionConfig(overrides)));
  const task = new ecs.FargateTaskDefinition(stack, 'Task');
  task.addContainer('edge', { image: images.edge });
  task.addContainer('sidecars', { image: images.sidecars });
  const assembly = app.synth();
  const manifest = JSON.parse(readFileSync(join(assembly.directory, 'Images.assets.json'), 'utf8')) as {
    dockerImages: Record<string, DockerAsset>;
  };
  return Object.values(manifest.dockerImages).map((a) => ({
    ...a,
    source: { ...a.source, directory: join(assembly.directory, a.source.directory) },
  }));
}

describe('the Docker assets', () => {
  const assets = synthAssets();
  const byFile = (file: string) => assets.find((a) => a.source.dockerFile === file);

  it('stage only what the images need, per .dockerignore', () => {
    for (const a of assets) {
      expect(readdirSync(a.source.directory).sort()).toEqual(
        [
          '.dockerignore',
          'bin',
          'edge-image',
          'lib',
          'lua',
          'package-lock.json',
          'package.json',
          'tsconfig.json',
        ].sort(),
      );
    }
  });

  it('build from public bases at deploy time', () => {
    expect(byFile('edge-image/Dockerfile.edge')?.source.dockerBuildArgs).toEqual({
      EDGE_BASE_IMAGE: PUBLIC_BASE_IMAGES.debian,
    });
    expect(byFile('edge-image/Dockerfile.sidecars')?.source.dockerBuildArgs).toEqual({
      NODE_IMAGE: PUBLIC_BASE_IMAGES.node,
    });
  });

  it('build the OpenResty edge for the auto-ssl engine', () => {
    const files = synthAssets({ tlsEngine: 'auto-ssl' }).map((a) => a.source.dockerFile);
    expect(files).toContain('edge-image/Dockerfile.edge-openresty');
  });

  it('refuse the Debian edge with the auto-ssl engine', () => {
    expect(() => synthAssets({ tlsEngine: 'auto-ssl', images: { edgeBase: 'debian' } })).toThrow(
      'images.edgeBase: "debian" has no lua-resty-auto-ssl: tlsEngine "auto-ssl" needs "openresty"',
    );
  });
});

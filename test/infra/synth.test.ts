import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { afterAll, expect, it } from 'vitest';
import { parseDeploymentConfig } from '../../lib/config/deployment-config.ts';
import { buildEdgeApp } from '../../lib/infra/edge-app.ts';
import { cdkContext, exampleConfig } from './fixtures.ts';

const outdir = mkdtempSync(join(tmpdir(), 'edge-synth-'));
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

// What `npx cdk synth` does, in-process: the example config, the real Docker assets, cdk-nag as a
// validation plugin, and no AWS credentials or lookups.
it('synthesizes the example (3 regions) offline, with Docker assets staged, not built', () => {
  const app = new App({ outdir, context: { ...cdkContext(), 'aws:cdk:bundling-stacks': ['**'] } });
  buildEdgeApp(parseDeploymentConfig(exampleConfig()), { app });
  const assembly = app.synth();

  expect(assembly.stacks.map((s) => s.stackName).sort()).toEqual([
    'edge-ap-southeast-1',
    'edge-eu-west-1',
    'edge-global',
    'edge-us-east-1',
  ]);
  // No context lookups were needed (AZs and the hosted zone come from the config).
  expect(assembly.manifest.missing ?? []).toEqual([]);
  const report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8')) as {
    pluginReports: { pluginName: string; conclusion: string; violations: unknown[] }[];
  };
  // cdk-nag ran as a validation plugin; the report lists only plugins with something to say.
  const plugins = (app as unknown as { _validationPlugins: { name: string }[] })._validationPlugins;
  expect(plugins.map((p) => p.name)).toContain('AwsSolutions');
  for (const p of report.pluginReports) {
    expect(p.violations, p.pluginName).toEqual([]);
    expect(p.conclusion, p.pluginName).toBe('success');
  }
  // Both Dockerfiles are staged as image assets for every regional stack; building is left to deploy.
  const assets = JSON.parse(readFileSync(join(outdir, 'edge-eu-west-1.assets.json'), 'utf8')) as {
    dockerImages: Record<string, { source: { dockerFile: string } }>;
  };
  expect(
    Object.values(assets.dockerImages)
      .map((i) => i.source.dockerFile)
      .sort(),
  ).toEqual(['edge-image/Dockerfile.edge', 'edge-image/Dockerfile.sidecars']);
  expect(readdirSync(outdir).filter((f) => f.startsWith('asset.')).length).toBeGreaterThanOrEqual(2);
});

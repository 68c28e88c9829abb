import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CDK_CLI = join(ROOT, 'node_modules/aws-cdk/bin/cdk');

export class SynthError extends Error {
  override name = 'SynthError';
}

/**
 * `cdk synth` of the app as cdk.json defines it, with the given deployment config, into `outDir`
 * (outside the repository: the Docker asset context is the repository). No staging: assets stay
 * where they are and the manifest names their Dockerfiles.
 */
export async function synthesize(opts: { configPath: string; outDir: string }): Promise<void> {
  const args = [CDK_CLI, 'synth', '-q', '--no-staging', '-c', `config=${opts.configPath}`, '-o', opts.outDir];
  const output = await new Promise<{ code: number; text: string }>((resolve) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (c: Buffer) => {
      text += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      text += c.toString();
    });
    child.on('close', (code) => resolve({ code: code ?? -1, text }));
  });
  if (output.code !== 0) {
    throw new SynthError(
      `cdk synth exited ${output.code}:\n${output.text.trim().split('\n').slice(-20).join('\n')}`,
    );
  }
}

export interface StackArtifact {
  readonly stackName: string;
  readonly region: string;
  readonly account: string;
  readonly templateFile: string;
  readonly assetsFile: string | undefined;
}

/** The stacks of a cloud assembly, from its manifest. */
export function assemblyStacks(outDir: string): StackArtifact[] {
  const manifest = JSON.parse(readFileSync(join(outDir, 'manifest.json'), 'utf8')) as {
    artifacts: Record<
      string,
      {
        type: string;
        environment?: string;
        properties?: {
          templateFile?: string;
          stackName?: string;
          additionalDependencies?: string[];
          file?: string;
        };
        dependencies?: string[];
      }
    >;
  };
  const stacks: StackArtifact[] = [];
  for (const [id, a] of Object.entries(manifest.artifacts)) {
    if (a.type !== 'aws:cloudformation:stack' || !a.properties?.templateFile) continue;
    const [, account = '', region = ''] = /^aws:\/\/([^/]+)\/(.+)$/.exec(a.environment ?? '') ?? [];
    const deps = [...(a.dependencies ?? []), ...(a.properties.additionalDependencies ?? [])];
    const assets = deps.find((d) => manifest.artifacts[d]?.type === 'cdk:asset-manifest');
    const assetsProps = assets ? manifest.artifacts[assets]?.properties : undefined;
    stacks.push({
      stackName: a.properties.stackName ?? id,
      region,
      account,
      templateFile: join(outDir, a.properties.templateFile),
      assetsFile: assetsProps?.file ? join(outDir, assetsProps.file) : undefined,
    });
  }
  return stacks;
}

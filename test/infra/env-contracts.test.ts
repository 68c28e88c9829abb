import { readFileSync } from 'node:fs';
import type { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { edgeConfigFromEnv } from '../../bin/render-edge-config.ts';
import { parseDeploymentConfig } from '../../lib/config/deployment-config.ts';
import type { EnvContract, EnvVars } from '../../lib/config/env-contract.ts';
import { edgeConfigEnv, edgeEnv } from '../../lib/edge/environment.ts';
import { programOf } from '../../lib/infra/container-environment.ts';
import { buildEdgeApp } from '../../lib/infra/edge-app.ts';
import { ENVIRONMENT_DOC_PATH, renderEnvironmentDoc } from '../../lib/infra/environment-doc.ts';
import { issuerConfigFromEnv, issuerEnv } from '../../lib/sidecars/issuer/config.ts';
import { loadRedisListenerConfig, redisListenerEnv } from '../../lib/sidecars/redis-listener/config.ts';
import { REDACT_PATHS } from '../../lib/sidecars/runtime/logger.ts';
import { loadSqsListenerConfig, sqsListenerEnv } from '../../lib/sidecars/sqs-listener/config.ts';
import { cdkContext, exampleConfig, registryImages } from './fixtures.ts';

/**
 * The task definition and the programs agree: every variable a container receives (plain or
 * secret) is one its program reads, every one it requires is there, and each program parses the
 * synthesized environment without error.
 */

type Json = Record<string, unknown>;
interface SynthContainer {
  readonly name: string;
  readonly command?: string[];
  readonly environment: Record<string, unknown>;
  readonly secrets: string[];
}

/** Each program's contract and its in-process config parser (no AWS call). */
const PROGRAMS: Record<string, { contract: EnvContract<EnvVars>; parse(env: NodeJS.ProcessEnv): unknown }> = {
  'sqs-listener': { contract: sqsListenerEnv, parse: loadSqsListenerConfig },
  'redis-listener': { contract: redisListenerEnv, parse: loadRedisListenerConfig },
  issuer: { contract: issuerEnv, parse: (env) => issuerConfigFromEnv(env) },
  'render-edge-config': { contract: edgeConfigEnv, parse: edgeConfigFromEnv },
  edge: { contract: edgeEnv, parse: (env) => edgeEnv.parse(env) },
};

let tasks: { region: string; account: string; containers: SynthContainer[] }[];

beforeAll(() => {
  const app = buildEdgeApp(parseDeploymentConfig(exampleConfig()), {
    nag: false,
    images: registryImages(),
    appProps: { context: cdkContext() },
  });
  tasks = app.regions.map((stack: Stack) => {
    const t = Template.fromStack(stack);
    const [task] = Object.values(t.findResources('AWS::ECS::TaskDefinition'));
    const defs = ((task?.Properties as Json | undefined)?.ContainerDefinitions as Json[] | undefined) ?? [];
    return {
      region: stack.region,
      account: stack.account,
      containers: defs.map((d) => ({
        name: d.Name as string,
        command: d.Command as string[] | undefined,
        environment: Object.fromEntries(
          ((d.Environment as { Name: string; Value: unknown }[]) ?? []).map((e) => [e.Name, e.Value]),
        ),
        secrets: ((d.Secrets as { Name: string }[]) ?? []).map((s) => s.Name),
      })),
    };
  });
});

/**
 * A synthesized value as the task would see it: literal strings as they are, CloudFormation
 * intrinsics resolved to placeholders of the right shape (a URL for *_URL, an ARN for *_ARN).
 */
function resolve(name: string, value: unknown, region: string, account: string): string {
  if (typeof value === 'string') return value;
  const v = value as Json;
  if (Array.isArray(v['Fn::Join'])) {
    const [sep, parts] = v['Fn::Join'] as [string, unknown[]];
    return parts.map((p) => resolve(name, p, region, account)).join(sep);
  }
  const ref = v.Ref as string | undefined;
  if (ref === 'AWS::Partition') return 'aws';
  if (ref === 'AWS::Region') return region;
  if (ref === 'AWS::AccountId') return account;
  if (ref === 'AWS::URLSuffix') return 'amazonaws.com';
  const id = ref ?? JSON.stringify(v).replace(/[^A-Za-z0-9]/g, '');
  if (name.endsWith('_URL')) return `https://placeholder.${region}.amazonaws.com/${account}/${id}`;
  if (name.endsWith('_ARN') || name.endsWith('_KEY_ID'))
    return `arn:aws:placeholder:${region}:${account}:${id}`;
  return `placeholder-${id}`;
}

function environmentOf(c: SynthContainer, region: string, account: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(c.environment))
    env[name] = resolve(name, value, region, account);
  // Secrets Manager values replaced by placeholders (long enough for any token rule).
  for (const name of c.secrets) env[name] = 's'.repeat(48);
  return env;
}

describe('the synthesized task definition and the programs’ environment contracts', () => {
  it('maps every container to a program with a contract (redis takes no environment)', () => {
    for (const { containers } of tasks) {
      const programs = containers.map(programOf);
      expect(programs.sort()).toEqual(
        ['edge', 'issuer', 'redis-listener', 'redis-server', 'render-edge-config', 'sqs-listener'].sort(),
      );
      const redis = containers.find((c) => programOf(c) === 'redis-server');
      expect(redis?.environment).toEqual({});
      expect(redis?.secrets).toEqual([]);
    }
  });

  it('gives each container only variables its program reads, and every one it requires', () => {
    for (const { region, containers } of tasks) {
      for (const c of containers) {
        const program = PROGRAMS[programOf(c)];
        if (!program) continue;
        const received = [...Object.keys(c.environment), ...c.secrets];
        const unknown = received.filter((n) => !program.contract.names.has(n));
        expect(unknown, `${region} ${c.name}: variables its program does not read`).toEqual([]);
        const missing = program.contract
          .describe()
          .filter((v) => v.required && !received.includes(v.name))
          .map((v) => v.name);
        expect(missing, `${region} ${c.name}: required variables not set`).toEqual([]);
      }
    }
  });

  it('delivers secret variables as ECS secrets and never as plain environment values', () => {
    for (const { region, containers } of tasks) {
      for (const c of containers) {
        const program = PROGRAMS[programOf(c)];
        if (!program) continue;
        for (const v of program.contract.describe()) {
          if (v.secret) expect(c.environment, `${region} ${c.name} ${v.name}`).not.toHaveProperty(v.name);
          else expect(c.secrets, `${region} ${c.name} ${v.name}`).not.toContain(v.name);
        }
      }
    }
  });

  it('each program parses exactly the synthesized environment (secrets as placeholders) without error', () => {
    for (const { region, account, containers } of tasks) {
      for (const c of containers) {
        const program = PROGRAMS[programOf(c)];
        if (!program) continue;
        const env = environmentOf(c, region, account);
        expect(() => program.parse(env), `${region} ${c.name}`).not.toThrow();
      }
    }
  });

  it('parses the region each task runs in', () => {
    for (const { region, account, containers } of tasks) {
      const sqs = containers.find((c) => programOf(c) === 'sqs-listener');
      if (!sqs) throw new Error('no sqs-listener');
      expect(loadSqsListenerConfig(environmentOf(sqs, region, account))).toMatchObject({
        region,
        bus: 'aws',
      });
    }
  });
});

describe('environment contracts', () => {
  it('every contract variable is EDGE_* and one name means one thing across programs', () => {
    const byName = new Map<string, string>();
    for (const [program, { contract }] of Object.entries(PROGRAMS)) {
      for (const v of contract.describe()) {
        expect(v.name, program).toMatch(/^EDGE_[A-Z0-9_]+$/);
        const secret = `${v.secret}`;
        const seen = byName.get(v.name);
        if (seen) expect(secret, `${v.name} is a secret in one program and not in another`).toBe(seen);
        byName.set(v.name, secret);
      }
    }
  });

  it('the one redaction list covers every secret field of every contract', () => {
    for (const { contract } of Object.values(PROGRAMS)) {
      for (const v of contract.describe().filter((x) => x.secret)) {
        expect(REDACT_PATHS, `${contract.program}.${v.field}`).toContain(v.field);
      }
    }
  });
});

describe('docs/environment.md', () => {
  it('is what the contracts generate (run lib/infra/environment-doc.ts)', () => {
    expect(readFileSync(ENVIRONMENT_DOC_PATH, 'utf8')).toBe(renderEnvironmentDoc());
  });
});

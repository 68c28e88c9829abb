import { readFileSync } from 'node:fs';
import { resolveString, resolveValue, type StackScope, type TemplateResource } from './intrinsics.ts';
import type { StackArtifact } from './synth.ts';

export type DependencyCondition = 'START' | 'COMPLETE' | 'SUCCESS' | 'HEALTHY';

export interface HealthCheck {
  /** `['CMD', ...argv]` or `['CMD-SHELL', script]`, as ECS takes it. */
  readonly command: readonly string[];
  readonly intervalSeconds: number;
  readonly timeoutSeconds: number;
  readonly retries: number;
  readonly startPeriodSeconds: number;
}

export interface SecretRef {
  readonly name: string;
  /** The ARN (or name) ECS would fetch, resolved. */
  readonly valueFrom: string;
  /** The template resource it points to, when it is one of this stack's. */
  readonly resource?: { readonly logicalId: string; readonly properties: Record<string, unknown> };
}

export interface ContainerDefinition {
  readonly name: string;
  /** As resolved from the template: an ECR asset URI or a registry image. */
  readonly image: string;
  readonly essential: boolean;
  readonly command?: readonly string[];
  readonly entryPoint?: readonly string[];
  readonly environment: Readonly<Record<string, string>>;
  readonly secrets: readonly SecretRef[];
  readonly user?: string;
  readonly readonlyRootFilesystem: boolean;
  readonly mountPoints: readonly { sourceVolume: string; containerPath: string; readOnly: boolean }[];
  readonly dependsOn: readonly { containerName: string; condition: DependencyCondition }[];
  readonly healthCheck?: HealthCheck;
  readonly restartPolicy?: {
    readonly ignoredExitCodes: readonly number[];
    readonly restartAttemptPeriodSeconds: number;
  };
  readonly systemControls: readonly { namespace: string; value: string }[];
  readonly stopTimeoutSeconds?: number;
  readonly ulimits: readonly { name: string; softLimit: number; hardLimit: number }[];
  readonly workingDirectory?: string;
  readonly portMappings: readonly { containerPort: number; protocol: string }[];
}

export interface TaskDefinition {
  readonly logicalId: string;
  readonly networkMode: string;
  readonly containers: readonly ContainerDefinition[];
  readonly volumes: readonly string[];
  /** Logical id of the task role in the template (the permission check reads its policies). */
  readonly taskRoleLogicalId?: string;
  readonly scope: StackScope;
}

export class TaskDefinitionError extends Error {
  override name = 'TaskDefinitionError';
}

type Raw = Record<string, unknown>;

/** The stack's one `AWS::ECS::TaskDefinition`, with every intrinsic resolved as after deploy. */
export function readTaskDefinition(stack: StackArtifact): TaskDefinition {
  const template = JSON.parse(readFileSync(stack.templateFile, 'utf8')) as {
    Resources: Record<string, TemplateResource>;
  };
  const scope: StackScope = {
    stackName: stack.stackName,
    region: stack.region,
    account: stack.account,
    resources: template.Resources,
  };
  const found = Object.entries(template.Resources).filter(([, r]) => r.Type === 'AWS::ECS::TaskDefinition');
  if (found.length !== 1) {
    throw new TaskDefinitionError(
      `${stack.stackName} has ${found.length} task definitions, expected exactly one`,
    );
  }
  const [logicalId, resource] = found[0] as [string, TemplateResource];
  const p = (resource.Properties ?? {}) as Raw;
  const roleArn = p.TaskRoleArn as { 'Fn::GetAtt'?: [string, string] } | undefined;
  return {
    logicalId,
    networkMode: String(p.NetworkMode ?? 'bridge'),
    containers: ((p.ContainerDefinitions as Raw[]) ?? []).map((c) => container(c, scope)),
    volumes: ((p.Volumes as Raw[]) ?? []).map((v) => String(v.Name)),
    taskRoleLogicalId: roleArn?.['Fn::GetAtt']?.[0],
    scope,
  };
}

function container(c: Raw, s: StackScope): ContainerDefinition {
  const list = <T>(v: unknown): T[] => (Array.isArray(v) ? (v as T[]) : []);
  const strings = (v: unknown) =>
    v === undefined ? undefined : (resolveValue(v, s) as unknown[]).map(String);
  const hc = c.HealthCheck as Raw | undefined;
  const rp = c.RestartPolicy as Raw | undefined;
  return {
    name: String(c.Name),
    image: resolveString(c.Image, s),
    // ECS's default: a container is essential unless it says otherwise.
    essential: c.Essential !== false,
    command: strings(c.Command),
    entryPoint: strings(c.EntryPoint),
    environment: Object.fromEntries(
      list<Raw>(c.Environment).map((e) => [String(e.Name), resolveString(e.Value, s)]),
    ),
    secrets: list<Raw>(c.Secrets).map((e) => secret(e, s)),
    user: c.User === undefined ? undefined : String(c.User),
    readonlyRootFilesystem: c.ReadonlyRootFilesystem === true,
    mountPoints: list<Raw>(c.MountPoints).map((m) => ({
      sourceVolume: String(m.SourceVolume),
      containerPath: String(m.ContainerPath),
      readOnly: m.ReadOnly === true,
    })),
    dependsOn: list<Raw>(c.DependsOn).map((d) => ({
      containerName: String(d.ContainerName),
      condition: String(d.Condition) as DependencyCondition,
    })),
    healthCheck: hc
      ? {
          command: (resolveValue(hc.Command, s) as unknown[]).map(String),
          // ECS's defaults for the fields the template may leave out.
          intervalSeconds: Number(hc.Interval ?? 30),
          timeoutSeconds: Number(hc.Timeout ?? 5),
          retries: Number(hc.Retries ?? 3),
          startPeriodSeconds: Number(hc.StartPeriod ?? 0),
        }
      : undefined,
    restartPolicy:
      rp && rp.Enabled === true
        ? {
            ignoredExitCodes: list<number>(rp.IgnoredExitCodes).map(Number),
            restartAttemptPeriodSeconds: Number(rp.RestartAttemptPeriod ?? 300),
          }
        : undefined,
    systemControls: list<Raw>(c.SystemControls).map((x) => ({
      namespace: String(x.Namespace),
      value: String(x.Value),
    })),
    stopTimeoutSeconds: c.StopTimeout === undefined ? undefined : Number(c.StopTimeout),
    ulimits: list<Raw>(c.Ulimits).map((u) => ({
      name: String(u.Name),
      softLimit: Number(u.SoftLimit),
      hardLimit: Number(u.HardLimit),
    })),
    workingDirectory: c.WorkingDirectory === undefined ? undefined : String(c.WorkingDirectory),
    portMappings: list<Raw>(c.PortMappings).map((m) => ({
      containerPort: Number(m.ContainerPort),
      protocol: String(m.Protocol ?? 'tcp'),
    })),
  };
}

function secret(e: Raw, s: StackScope): SecretRef {
  const raw = e.ValueFrom as { Ref?: string } | string;
  const logicalId = typeof raw === 'object' && raw.Ref ? raw.Ref : undefined;
  const res = logicalId ? s.resources[logicalId] : undefined;
  return {
    name: String(e.Name),
    valueFrom: resolveString(raw, s),
    ...(logicalId && res ? { resource: { logicalId, properties: res.Properties ?? {} } } : {}),
  };
}

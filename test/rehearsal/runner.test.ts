import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  blockedBy,
  type DependencyState,
  stopWaves,
  TaskStoppedError,
} from '../../lib/rehearsal/depends-on.ts';
import {
  IntrinsicError,
  resolveString,
  resolveValue,
  type StackScope,
} from '../../lib/rehearsal/intrinsics.ts';
import { readTaskDefinition, TaskDefinitionError } from '../../lib/rehearsal/task-definition.ts';

const scope: StackScope = {
  stackName: 'edge-us-east-1',
  region: 'us-east-1',
  account: '123456789012',
  resources: {
    Dlq: { Type: 'AWS::SQS::Queue', Properties: { QueueName: 'edge-dlq' } },
    Anonymous: { Type: 'AWS::SQS::Queue' },
    Token: { Type: 'AWS::SecretsManager::Secret', Properties: { Name: 'edge/control-token' } },
    Keys: { Type: 'AWS::KMS::ReplicaKey' },
    TaskRole: { Type: 'AWS::IAM::Role' },
    Bucket: { Type: 'AWS::S3::Bucket' },
  },
};

describe('intrinsics: the template resolved as after deploy', () => {
  it('resolves pseudo parameters, Ref and Fn::GetAtt of the modelled types', () => {
    expect(resolveString({ Ref: 'AWS::Region' }, scope)).toBe('us-east-1');
    expect(resolveString({ Ref: 'Dlq' }, scope)).toBe(
      'https://sqs.us-east-1.amazonaws.com/123456789012/edge-dlq',
    );
    expect(resolveString({ 'Fn::GetAtt': ['Dlq', 'Arn'] }, scope)).toBe(
      'arn:aws:sqs:us-east-1:123456789012:edge-dlq',
    );
    expect(resolveString({ 'Fn::GetAtt': 'Dlq.QueueName' }, scope)).toBe('edge-dlq');
    expect(resolveString({ Ref: 'Token' }, scope)).toMatch(
      /^arn:aws:secretsmanager:us-east-1:123456789012:secret:edge\/control-token-[0-9a-f]{6}$/,
    );
    // A multi-region replica's id is an mrk- id, stable across runs.
    const keyArn = resolveString({ 'Fn::GetAtt': ['Keys', 'Arn'] }, scope);
    expect(keyArn).toMatch(/^arn:aws:kms:us-east-1:123456789012:key\/mrk-[0-9a-f]{32}$/);
    expect(resolveString({ 'Fn::GetAtt': ['Keys', 'Arn'] }, scope)).toBe(keyArn);
    // Names CloudFormation generates get stable stand-ins.
    expect(resolveString({ 'Fn::GetAtt': ['Anonymous', 'QueueName'] }, scope)).toMatch(
      /^edge-us-east-1-Anonymous-[0-9a-f]{8}$/,
    );
  });

  it('resolves Fn::Join, Fn::Sub (with and without variables), Fn::Select and Fn::Split, deeply', () => {
    expect(
      resolveValue(
        {
          a: { 'Fn::Join': [':', ['arn', { Ref: 'AWS::Partition' }, 'sqs', { Ref: 'AWS::Region' }]] },
          b: [{ 'Fn::Sub': 'arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:${Dlq.QueueName}' }],
          c: { 'Fn::Sub': ['${Name}-task-', { Name: 'edge' }] },
          d: { 'Fn::Select': [1, { 'Fn::Split': ['/', 'a/b/c'] }] },
        },
        scope,
      ),
    ).toEqual({
      a: 'arn:aws:sqs:us-east-1',
      b: ['arn:aws:sqs:us-east-1:123456789012:edge-dlq'],
      c: 'edge-task-',
      d: 'b',
    });
  });

  it('refuses what it does not model, naming it', () => {
    expect(() => resolveValue({ Ref: 'Nope' }, scope)).toThrow(
      'Ref Nope: no such resource or pseudo parameter in edge-us-east-1',
    );
    expect(() => resolveValue({ Ref: 'Bucket' }, scope)).toThrow(IntrinsicError);
    expect(() => resolveValue({ 'Fn::GetAtt': ['Dlq', 'Nothing'] }, scope)).toThrow(
      'Fn::GetAtt Dlq.Nothing: AWS::SQS::Queue.Nothing is not modelled by the rehearsal',
    );
    expect(() => resolveValue({ 'Fn::ImportValue': 'x' }, scope)).toThrow('Fn::ImportValue is not modelled');
    expect(() => resolveString({ 'Fn::Split': [',', 'a,b'] }, scope)).toThrow(
      'expected a string, got ["a","b"]',
    );
  });
});

describe('task definition parsing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rehearsal-td-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const stack = (resources: Record<string, unknown>) => {
    const templateFile = join(dir, `t-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(templateFile, JSON.stringify({ Resources: resources }));
    return {
      stackName: 'edge-us-east-1',
      region: 'us-east-1',
      account: '123456789012',
      templateFile,
      assetsFile: undefined,
    };
  };

  it('reads every container field the agent honours, with ECS defaults and intrinsics resolved', () => {
    const td = readTaskDefinition(
      stack({
        ...scope.resources,
        Task: {
          Type: 'AWS::ECS::TaskDefinition',
          Properties: {
            NetworkMode: 'awsvpc',
            TaskRoleArn: { 'Fn::GetAtt': ['TaskRole', 'Arn'] },
            Volumes: [{ Name: 'edge-conf' }],
            ContainerDefinitions: [
              {
                Name: 'redis',
                Image: 'public.ecr.aws/docker/library/redis:7.2-alpine',
                Command: ['redis-server', '--port', '6380'],
                HealthCheck: { Command: ['CMD-SHELL', 'redis-cli ping'], Interval: 10 },
              },
              {
                Name: 'sqs-listener',
                Image: { 'Fn::Sub': '${AWS::AccountId}.dkr.ecr.${AWS::Region}.amazonaws.com/x:abc' },
                Environment: [{ Name: 'DLQ_URL', Value: { Ref: 'Dlq' } }],
                Secrets: [{ Name: 'TOKEN', ValueFrom: { Ref: 'Token' } }],
                DependsOn: [{ ContainerName: 'redis', Condition: 'HEALTHY' }],
                RestartPolicy: { Enabled: true, RestartAttemptPeriod: 60 },
                ReadonlyRootFilesystem: true,
                User: '1000:1000',
                MountPoints: [{ SourceVolume: 'edge-conf', ContainerPath: '/etc/edge', ReadOnly: true }],
                SystemControls: [{ Namespace: 'net.ipv4.ip_unprivileged_port_start', Value: '0' }],
                StopTimeout: 40,
                Essential: false,
                PortMappings: [{ ContainerPort: 443 }],
              },
            ],
          },
        },
      }),
    );
    expect(td.networkMode).toBe('awsvpc');
    expect(td.taskRoleLogicalId).toBe('TaskRole');
    expect(td.volumes).toEqual(['edge-conf']);
    const [redis, listener] = td.containers;
    expect(redis).toMatchObject({
      name: 'redis',
      essential: true,
      command: ['redis-server', '--port', '6380'],
      readonlyRootFilesystem: false,
      // ECS's defaults for what the template leaves out.
      healthCheck: {
        command: ['CMD-SHELL', 'redis-cli ping'],
        intervalSeconds: 10,
        timeoutSeconds: 5,
        retries: 3,
        startPeriodSeconds: 0,
      },
      restartPolicy: undefined,
      stopTimeoutSeconds: undefined,
    });
    expect(listener).toMatchObject({
      image: '123456789012.dkr.ecr.us-east-1.amazonaws.com/x:abc',
      essential: false,
      environment: { DLQ_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/edge-dlq' },
      dependsOn: [{ containerName: 'redis', condition: 'HEALTHY' }],
      restartPolicy: { ignoredExitCodes: [], restartAttemptPeriodSeconds: 60 },
      readonlyRootFilesystem: true,
      user: '1000:1000',
      mountPoints: [{ sourceVolume: 'edge-conf', containerPath: '/etc/edge', readOnly: true }],
      systemControls: [{ namespace: 'net.ipv4.ip_unprivileged_port_start', value: '0' }],
      stopTimeoutSeconds: 40,
      portMappings: [{ containerPort: 443, protocol: 'tcp' }],
    });
    expect(listener?.secrets[0]).toMatchObject({ name: 'TOKEN', resource: { logicalId: 'Token' } });
  });

  it('wants exactly one task definition', () => {
    expect(() => readTaskDefinition(stack({ ...scope.resources }))).toThrow(
      new TaskDefinitionError('edge-us-east-1 has 0 task definitions, expected exactly one'),
    );
  });
});

describe('dependsOn: when a container may start, and the order a task stops in', () => {
  const states = (s: Record<string, Partial<DependencyState>>) => (name: string) =>
    s[name] && { phase: 'PENDING' as const, health: 'UNKNOWN' as const, hasHealthCheck: true, ...s[name] };
  const dependent = (condition: 'START' | 'COMPLETE' | 'SUCCESS' | 'HEALTHY') => ({
    name: 'edge',
    dependsOn: [{ containerName: 'dep', condition }],
  });

  it('waits for each condition and lets the container start once it holds', () => {
    expect(blockedBy(dependent('START'), states({ dep: {} }))).toBe('dep to start');
    expect(blockedBy(dependent('START'), states({ dep: { phase: 'RUNNING' } }))).toBeUndefined();
    expect(blockedBy(dependent('COMPLETE'), states({ dep: { phase: 'RUNNING' } }))).toBe('dep to complete');
    expect(
      blockedBy(dependent('COMPLETE'), states({ dep: { phase: 'STOPPED', exitCode: 3 } })),
    ).toBeUndefined();
    expect(blockedBy(dependent('SUCCESS'), states({ dep: { phase: 'RUNNING' } }))).toBe('dep to succeed');
    expect(
      blockedBy(dependent('SUCCESS'), states({ dep: { phase: 'STOPPED', exitCode: 0 } })),
    ).toBeUndefined();
    expect(blockedBy(dependent('HEALTHY'), states({ dep: { phase: 'RUNNING' } }))).toBe('dep to be healthy');
    expect(
      blockedBy(dependent('HEALTHY'), states({ dep: { phase: 'RUNNING', health: 'HEALTHY' } })),
    ).toBeUndefined();
  });

  it('stops the task when a condition can no longer be met', () => {
    expect(() => blockedBy(dependent('SUCCESS'), states({ dep: { phase: 'STOPPED', exitCode: 1 } }))).toThrow(
      new TaskStoppedError('edge needs dep to exit 0 (SUCCESS), but it exited 1'),
    );
    expect(() =>
      blockedBy(dependent('HEALTHY'), states({ dep: { phase: 'RUNNING', health: 'UNHEALTHY' } })),
    ).toThrow('edge needs dep HEALTHY, but it is UNHEALTHY');
    expect(() =>
      blockedBy(dependent('HEALTHY'), states({ dep: { phase: 'STOPPED', exitCode: 137 } })),
    ).toThrow('edge needs dep HEALTHY, but it is stopped (exit 137)');
    expect(() => blockedBy(dependent('HEALTHY'), states({ dep: { hasHealthCheck: false } }))).toThrow(
      'edge needs dep HEALTHY, which has no health check',
    );
    expect(() => blockedBy(dependent('START'), states({}))).toThrow('edge depends on unknown container dep');
  });

  it('stops dependents before what they depend on, the regional task in its order', () => {
    const c = (name: string, ...deps: string[]) => ({
      name,
      dependsOn: deps.map((d) => ({ containerName: d, condition: 'HEALTHY' as const })),
    });
    expect(
      stopWaves([
        c('redis'),
        c('sqs-listener', 'redis'),
        c('redis-listener', 'redis'),
        c('issuer', 'redis'),
        c('edge', 'redis', 'sqs-listener'),
      ]),
    ).toEqual([['redis-listener', 'issuer', 'edge'], ['sqs-listener'], ['redis']]);
    // A cycle cannot be ordered: what remains stops at once.
    expect(stopWaves([c('a', 'b'), c('b', 'a')])).toEqual([['a', 'b']]);
  });
});

import { generateKeyPairSync } from 'node:crypto';
import {
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  DeploymentConfigError,
  nginxSizing,
  parseDeploymentConfig,
} from '../../lib/config/deployment-config.ts';
import { renderNginxConf } from '../../lib/edge/nginx-conf.ts';
import {
  ensureAccountKey,
  holdsValidKey,
  newAccountKeyPem,
} from '../../lib/infra/acme-account-key/index.mjs';
import { buildEdgeApp } from '../../lib/infra/edge-app.ts';
import { taskEdgeConfig } from '../../lib/infra/task-edge-config.ts';
import { cdkContext, exampleConfig, oneRegionConfig, registryImages } from './fixtures.ts';

let global: Template;
let regional: Record<string, Template>;

beforeAll(() => {
  const edge = buildEdgeApp(parseDeploymentConfig(exampleConfig()), {
    nag: false,
    images: registryImages(),
    appProps: { context: cdkContext() },
  });
  global = Template.fromStack(edge.global);
  regional = Object.fromEntries(edge.regions.map((s) => [s.region, Template.fromStack(s)]));
});

describe('ACME account key at deploy time', () => {
  it('accepts what the issuer accepts, and nothing else', () => {
    const pem = newAccountKeyPem();
    expect(holdsValidKey(pem)).toBe(true);
    expect(holdsValidKey(JSON.stringify({ privateKeyPem: pem }))).toBe(true);
    expect(holdsValidKey('x7Yq-random-placeholder-password')).toBe(false);
    // The generated key's armour around a body that is not a key.
    const armour = pem.trim().split('\n');
    expect(holdsValidKey(`${armour[0]}\nnot a key\n${armour.at(-1)}\n`)).toBe(false);
    expect(holdsValidKey(JSON.stringify({ other: 1 }))).toBe(false);
    expect(holdsValidKey(undefined)).toBe(false);
  });

  it('replaces the generated placeholder with a P-256 key', async () => {
    const sm = mockClient(SecretsManagerClient);
    sm.on(GetSecretValueCommand).resolves({ SecretString: 'generated-placeholder' });
    sm.on(PutSecretValueCommand).resolves({});
    expect(await ensureAccountKey(new SecretsManagerClient({ region: 'eu-west-1' }), 'arn:secret')).toBe(
      'created',
    );
    const [put] = sm.commandCalls(PutSecretValueCommand);
    expect(put?.args[0].input.SecretId).toBe('arn:secret');
    expect(holdsValidKey(put?.args[0].input.SecretString)).toBe(true);
    expect(put?.args[0].input.SecretString).toContain('BEGIN PRIVATE KEY');
    sm.restore();
  });

  it('never overwrites a valid key, so redeploys keep the ACME account', async () => {
    const sm = mockClient(SecretsManagerClient);
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    sm.on(GetSecretValueCommand).resolves({ SecretString: pem });
    expect(await ensureAccountKey(new SecretsManagerClient({ region: 'eu-west-1' }), 'arn:secret')).toBe(
      'kept',
    );
    expect(sm.commandCalls(PutSecretValueCommand)).toHaveLength(0);
    sm.restore();
  });

  it('runs as a Node.js 24 custom resource whose role reaches only the secret and its own logs', () => {
    global.hasResourceProperties('Custom::AcmeAccountKey', {
      SecretId: { Ref: Match.stringLikeRegexp('^AcmeAccountKey') },
    });
    global.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs24.x',
      Handler: 'index.handler',
    });
    const policies = Object.values(global.findResources('AWS::IAM::Policy')).filter((p) =>
      JSON.stringify(p).includes('secretsmanager:PutSecretValue'),
    );
    expect(policies).toHaveLength(1);
    const statements = (policies[0]?.Properties as { PolicyDocument?: { Statement?: unknown[] } } | undefined)
      ?.PolicyDocument?.Statement;
    expect(statements).toEqual([
      {
        Effect: 'Allow',
        Action: ['secretsmanager:GetSecretValue', 'secretsmanager:PutSecretValue'],
        Resource: { Ref: expect.stringMatching(/^AcmeAccountKey/) },
      },
      {
        Effect: 'Allow',
        Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        Resource: { 'Fn::GetAtt': [expect.stringMatching(/^AcmeAccountKeyInitLogs/), 'Arn'] },
      },
    ]);
  });
});

describe('multi-region private-key key', () => {
  it('has its primary in the home region with rotation, and publishes its ARN by name', () => {
    global.hasResourceProperties('AWS::KMS::Key', { MultiRegion: true, EnableKeyRotation: true });
    global.hasResourceProperties('AWS::KMS::Alias', { AliasName: 'alias/edge-private-keys' });
    global.hasResourceProperties('AWS::SSM::Parameter', { Name: '/edge/private-keys/primary-key-arn' });
  });

  it('has a replica with the same alias in every other region, none in the home region', () => {
    for (const region of ['us-east-1', 'ap-southeast-1']) {
      const t = regional[region] as Template;
      t.resourceCountIs('AWS::KMS::ReplicaKey', 1);
      t.hasResource('AWS::KMS::ReplicaKey', { DeletionPolicy: 'Retain' });
      t.hasResourceProperties('AWS::KMS::Alias', {
        AliasName: 'alias/edge-private-keys',
        TargetKeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^PrivateKeysKey'), 'KeyId'] },
      });
    }
    (regional['eu-west-1'] as Template).resourceCountIs('AWS::KMS::ReplicaKey', 0);
  });
});

describe('nginx sized to the task', () => {
  it('runs one worker per vCPU with room for two connections per client and 2x the scale-out target', () => {
    expect(nginxSizing(256, 5000)).toEqual({
      workerProcesses: 1,
      workerConnections: 20512,
      workerRlimitNofile: 41024,
      peakConnections: 20000,
    });
    expect(nginxSizing(4096, 5000).workerProcesses).toBe(4);
    expect(nginxSizing(4096, 5000).workerConnections).toBe(5128);
  });

  it('renders the sizing into nginx.conf through the typed edge config', () => {
    const conf = renderNginxConf(
      taskEdgeConfig({
        region: 'eu-west-1',
        platformDomain: 'platform.example',
        engine: 'native',
        redisPrefix: 'edge',
        vpcCidr: '10.40.0.0/16',
        cacheMaxSizeGiB: 10,
        cpuUnits: 2048,
        connectionsPerTask: 5000,
      }),
    );
    expect(conf).toContain('worker_processes 2;');
    expect(conf).toContain('worker_rlimit_nofile 20512;');
    expect(conf).toContain('worker_connections 10256;');
    expect(conf).toContain('worker_shutdown_timeout 20s;');
  });

  it('refuses a connections target the task cannot hold, naming the value', () => {
    expect(() =>
      parseDeploymentConfig(
        oneRegionConfig({ task: { cpu: 256, memoryMiB: 512, connectionsPerTask: 5000 } }),
      ),
    ).toThrow(DeploymentConfigError);
    expect(() =>
      parseDeploymentConfig(
        oneRegionConfig({ task: { cpu: 256, memoryMiB: 512, connectionsPerTask: 5000 } }),
      ),
    ).toThrow(
      'task.connectionsPerTask: 5000 connections per task need about 625 MiB in nginx (20000 connections at 32 KiB), but 512 MiB tasks leave -64 MiB after Redis and the sidecars',
    );
  });

  it('gives the edge container a stop timeout that covers nginx draining, and the nofile limit', () => {
    const t = regional['eu-west-1'] as Template;
    const [task] = Object.values(t.findResources('AWS::ECS::TaskDefinition'));
    const edge = ((task?.Properties?.ContainerDefinitions ?? []) as Record<string, unknown>[]).find(
      (c) => c.Name === 'edge',
    );
    expect(edge?.StopTimeout).toBe(30);
    expect(edge?.Ulimits).toEqual([{ Name: 'nofile', SoftLimit: 41024, HardLimit: 41024 }]);
    t.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
      TargetGroupAttributes: Match.arrayWith([{ Key: 'deregistration_delay.timeout_seconds', Value: '90' }]),
    });
  });
});

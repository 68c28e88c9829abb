import { type Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseDeploymentConfig } from '../../lib/config/deployment-config.ts';
import { buildEdgeApp, type EdgeApp } from '../../lib/infra/edge-app.ts';
import { LONG_RUNNING_CONTAINERS } from '../../lib/infra/edge-task.ts';
import { cdkContext, exampleConfig, registryImages } from './fixtures.ts';

// One synth of the example (3 regions) for the whole file: CPU is scarce.
let edge: EdgeApp;
let global: Template;
let regional: Record<string, Template>;

type Json = Record<string, unknown>;
function resourcesOf(t: Template, type: string): Json[] {
  return Object.values(t.findResources(type)).map((r) => r.Properties as Json);
}
function containers(t: Template): Json[] {
  const [task] = resourcesOf(t, 'AWS::ECS::TaskDefinition');
  return (task?.ContainerDefinitions as Json[]) ?? [];
}
function container(t: Template, name: string): Json {
  const c = containers(t).find((x) => x.Name === name);
  if (!c) throw new Error(`no container ${name}`);
  return c;
}
const partitionArn = (tail: string) => ({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, tail]] });

beforeAll(() => {
  edge = buildEdgeApp(parseDeploymentConfig(exampleConfig()), {
    nag: false,
    images: registryImages(),
    appProps: { context: cdkContext() },
  });
  global = Template.fromStack(edge.global);
  regional = Object.fromEntries(edge.regions.map((s: Stack) => [s.region, Template.fromStack(s)]));
});

describe('app', () => {
  it('has one global stack in the home region and one stack per edge region, each with explicit env', () => {
    expect(edge.global.region).toBe('eu-west-1');
    expect(edge.global.account).toBe('123456789012');
    expect(edge.regions.map((s) => [s.stackName, s.region, s.account])).toEqual([
      ['edge-eu-west-1', 'eu-west-1', '123456789012'],
      ['edge-us-east-1', 'us-east-1', '123456789012'],
      ['edge-ap-southeast-1', 'ap-southeast-1', '123456789012'],
    ]);
  });

  it('deploys every regional stack after the global stack, with no cross-region references', () => {
    for (const stack of edge.regions) {
      expect(stack.dependencies).toEqual([edge.global]);
      expect(JSON.stringify(regional[stack.region]?.toJSON())).not.toContain('Fn::ImportValue');
    }
    // One plain parameter (the private-key primary's ARN, read by name), no export parameters.
    expect(Object.values(global.findResources('AWS::SSM::Parameter')).map((r) => r.Properties.Name)).toEqual([
      '/edge/private-keys/primary-key-arn',
    ]);
  });

  it('passes cdk-nag AwsSolutions with zero unacknowledged findings', () => {
    const report = new AwsSolutionsChecks(edge.app).validateScope(edge.app);
    expect(report.violations.map((v) => `${v.ruleName} ${v.violatingResources[0]?.constructPath}`)).toEqual(
      [],
    );
    expect(report.success).toBe(true);
  });

  it('gives every acknowledgement an exact rule id and a concrete reason', () => {
    const acks: [string, string][] = [];
    for (const c of edge.app.node.findAll()) {
      for (const m of c.node.metadata) {
        if (m.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
        acks.push(...Object.entries(m.data as Record<string, string>));
      }
    }
    const ours = acks.filter(([id]) => id.includes('AwsSolutions-') || id.endsWith('::W3010'));
    expect(ours.length).toBeGreaterThan(10);
    for (const [id, reason] of ours) {
      expect(id).toMatch(/(AwsSolutions-[A-Z0-9]+(\[.+\])?|CloudFormation-Validate::W\d+)$/);
      expect(reason.length).toBeGreaterThan(40);
    }
  });
});

describe('global stack', () => {
  it('encrypts the event topic with a rotating customer-managed key', () => {
    global.hasResourceProperties('AWS::SNS::Topic', {
      TopicName: 'edge-events',
      KmsMasterKeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^BusKey'), 'Arn'] },
    });
    global.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    global.hasResourceProperties('AWS::KMS::Alias', { AliasName: 'alias/edge-events' });
  });

  it('lets SNS and SQS use the key, limited to the account', () => {
    global.hasResourceProperties('AWS::KMS::Key', {
      KeyPolicy: {
        Statement: Match.arrayWith([
          {
            Sid: 'AllowSnsAndSqsToUseTheKey',
            Effect: 'Allow',
            Principal: { Service: ['sns.amazonaws.com', 'sqs.amazonaws.com'] },
            Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
            Resource: '*',
            Condition: { StringEquals: { 'aws:SourceAccount': '123456789012' } },
          },
        ]),
      },
    });
  });

  it('enforces TLS on the topic', () => {
    global.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('makes the state table a global table with a replica in every other edge region, PITR, TTL and SSE', () => {
    global.resourceCountIs('AWS::DynamoDB::GlobalTable', 1);
    global.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      TableName: 'edge-state',
      KeySchema: [
        { AttributeName: 'PK', KeyType: 'HASH' },
        { AttributeName: 'SK', KeyType: 'RANGE' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      SSESpecification: { SSEEnabled: true },
      Replicas: Match.arrayWith(
        ['us-east-1', 'ap-southeast-1', 'eu-west-1'].map((region) =>
          Match.objectLike({
            Region: region,
            PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
            DeletionProtectionEnabled: true,
          }),
        ),
      ),
    });
  });

  it('keeps the ACME account key in Secrets Manager, replicated to the other edge regions', () => {
    global.hasResourceProperties('AWS::SecretsManager::Secret', {
      Name: 'edge/acme-account-key',
      ReplicaRegions: [{ Region: 'us-east-1' }, { Region: 'ap-southeast-1' }],
    });
  });

  it('points the platform wildcard at the geolocated edge hostname', () => {
    global.hasResourceProperties('AWS::Route53::RecordSet', {
      HostedZoneId: 'Z0123456789EXAMPLE',
      Name: '*.platform.example.',
      Type: 'CNAME',
      ResourceRecords: ['edge.platform.example'],
    });
  });

  it('keeps the origin bucket private, ACL-free and TLS-only without website hosting', () => {
    global.hasResourceProperties('AWS::S3::Bucket', {
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
      VersioningConfiguration: { Status: 'Enabled' },
      LoggingConfiguration: Match.objectLike({ LogFilePrefix: 'origin/' }),
    });
    expect(JSON.stringify(global.findResources('AWS::S3::Bucket'))).not.toContain('WebsiteConfiguration');
  });
});

describe('regional stack', () => {
  it('uses a Network Load Balancer, never an Application Load Balancer, with cross-zone on', () => {
    for (const t of Object.values(regional)) {
      t.resourceCountIs('AWS::ElasticLoadBalancingV2::LoadBalancer', 1);
      t.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
        Type: 'network',
        Scheme: 'internet-facing',
        LoadBalancerAttributes: Match.arrayWith([
          { Key: 'load_balancing.cross_zone.enabled', Value: 'true' },
        ]),
      });
      expect(resourcesOf(t, 'AWS::ElasticLoadBalancingV2::LoadBalancer').map((p) => p.Type)).toEqual([
        'network',
      ]);
    }
  });

  it('passes TCP 80 and 443 through: TCP listeners, no certificates', () => {
    const t = regional['eu-west-1'] as Template;
    const listeners = resourcesOf(t, 'AWS::ElasticLoadBalancingV2::Listener');
    expect(listeners.map((l) => [l.Port, l.Protocol]).sort()).toEqual([
      [443, 'TCP'],
      [80, 'TCP'],
    ]);
    for (const l of listeners) expect(l.Certificates).toBeUndefined();
  });

  it('enables proxy protocol v2 on both target groups and renders nginx to expect it', () => {
    const t = regional['eu-west-1'] as Template;
    const groups = resourcesOf(t, 'AWS::ElasticLoadBalancingV2::TargetGroup');
    expect(groups).toHaveLength(2);
    for (const g of groups) {
      expect(g.Protocol).toBe('TCP');
      expect(g.TargetType).toBe('ip');
      expect(g.TargetGroupAttributes).toEqual(
        expect.arrayContaining([
          { Key: 'proxy_protocol_v2.enabled', Value: 'true' },
          { Key: 'preserve_client_ip.enabled', Value: 'false' },
        ]),
      );
    }
    const env = container(t, 'edge-config').Environment as { Name: string; Value: string }[];
    const edgeConfig = JSON.parse(env.find((e) => e.Name === 'EDGE_CONFIG')?.Value ?? '{}');
    expect(edgeConfig.listen).toMatchObject({
      proxyProtocol: true,
      trustedProxies: ['10.40.0.0/16'],
      httpsPort: 443,
    });
  });

  it('maps the configured Elastic IPs onto the NLB where asked', () => {
    const t = regional['us-east-1'] as Template;
    t.resourceCountIs('AWS::EC2::EIP', 2);
    const [lb] = resourcesOf(t, 'AWS::ElasticLoadBalancingV2::LoadBalancer');
    expect(((lb?.SubnetMappings ?? []) as Json[]).map((m) => Object.keys(m).sort())).toEqual([
      ['AllocationId', 'SubnetId'],
      ['AllocationId', 'SubnetId'],
    ]);
    regional['eu-west-1']?.resourceCountIs('AWS::EC2::EIP', 0);
  });

  it('builds the VPC in the configured AZs without NAT, with S3 and DynamoDB gateway endpoints and flow logs', () => {
    const t = regional['eu-west-1'] as Template;
    t.resourceCountIs('AWS::EC2::NatGateway', 0);
    expect(resourcesOf(t, 'AWS::EC2::Subnet').map((s) => s.AvailabilityZone)).toEqual([
      'eu-west-1a',
      'eu-west-1b',
    ]);
    const endpoints = resourcesOf(t, 'AWS::EC2::VPCEndpoint').map((e) => JSON.stringify(e.ServiceName));
    expect(endpoints.some((e) => e.includes('.s3'))).toBe(true);
    expect(endpoints.some((e) => e.includes('.dynamodb'))).toBe(true);
    t.resourceCountIs('AWS::EC2::FlowLog', 1);
  });

  it('runs the tasks in public subnets with public IPs when NAT is off, reachable only from the NLB', () => {
    const t = regional['eu-west-1'] as Template;
    t.hasResourceProperties('AWS::ECS::Service', {
      NetworkConfiguration: { AwsvpcConfiguration: Match.objectLike({ AssignPublicIp: 'ENABLED' }) },
    });
    const ingress = resourcesOf(t, 'AWS::EC2::SecurityGroupIngress');
    expect(ingress.map((i) => i.FromPort).sort()).toEqual([443, 80]);
    for (const i of ingress) expect(i.SourceSecurityGroupId).toBeDefined();
  });

  it('enables Container Insights and a circuit breaker that rolls back', () => {
    const t = regional['eu-west-1'] as Template;
    t.hasResourceProperties('AWS::ECS::Cluster', {
      ClusterSettings: [{ Name: 'containerInsights', Value: 'enabled' }],
    });
    t.hasResourceProperties('AWS::ECS::Service', {
      LaunchType: 'FARGATE',
      DesiredCount: 2,
      DeploymentConfiguration: Match.objectLike({
        DeploymentCircuitBreaker: { Enable: true, Rollback: true },
        MinimumHealthyPercent: 100,
      }),
    });
  });

  it('scales between the configured bounds on CPU and on connections per task', () => {
    regional['ap-southeast-1']?.hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', {
      MinCapacity: 2,
      MaxCapacity: 6,
    });
    const t = regional['eu-west-1'] as Template;
    t.hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', {
      PolicyType: 'TargetTrackingScaling',
      TargetTrackingScalingPolicyConfiguration: Match.objectLike({
        PredefinedMetricSpecification: { PredefinedMetricType: 'ECSServiceAverageCPUUtilization' },
        TargetValue: 60,
      }),
    });
    const alarms = JSON.stringify(t.findResources('AWS::CloudWatch::Alarm'));
    expect(alarms).toContain('ActiveFlowCount');
    expect(alarms).toContain('RunningTaskCount');
    t.resourcePropertiesCountIs(
      'AWS::ApplicationAutoScaling::ScalingPolicy',
      { PolicyType: 'StepScaling' },
      2,
    );
  });

  it('sizes ephemeral storage for the cache and renders the cache size from it', () => {
    const t = regional['eu-west-1'] as Template;
    t.hasResourceProperties('AWS::ECS::TaskDefinition', {
      RequiresCompatibilities: ['FARGATE'],
      Cpu: '1024',
      Memory: '2048',
      EphemeralStorage: { SizeInGiB: 50 },
    });
    const env = container(t, 'edge-config').Environment as { Name: string; Value: string }[];
    expect(JSON.parse(env.find((e) => e.Name === 'EDGE_CONFIG')?.Value ?? '{}').cache.maxSize).toBe('44g');
  });

  it('runs every container of the design, each long-running one with a health check and log retention', () => {
    const t = regional['eu-west-1'] as Template;
    expect(containers(t).map((c) => c.Name)).toEqual([
      'edge-config',
      'redis',
      'sqs-listener',
      'redis-listener',
      'issuer',
      'edge',
    ]);
    for (const name of LONG_RUNNING_CONTAINERS) {
      const c = container(t, name);
      expect((c.HealthCheck as Json).Command, name).toBeDefined();
      expect((c.LogConfiguration as Json).LogDriver, name).toBe('awslogs');
    }
    for (const group of resourcesOf(t, 'AWS::Logs::LogGroup')) expect(group.RetentionInDays).toBe(30);
  });

  it('orders the containers: edge after the render, a healthy Redis and a bootstrapped sqs-listener', () => {
    const t = regional['eu-west-1'] as Template;
    expect(container(t, 'edge').DependsOn).toEqual([
      { ContainerName: 'edge-config', Condition: 'SUCCESS' },
      { ContainerName: 'redis', Condition: 'HEALTHY' },
      { ContainerName: 'sqs-listener', Condition: 'HEALTHY' },
    ]);
    for (const name of ['sqs-listener', 'redis-listener', 'issuer']) {
      expect(container(t, name).DependsOn).toEqual([{ ContainerName: 'redis', Condition: 'HEALTHY' }]);
    }
    expect(container(t, 'edge-config').Essential).toBe(false);
  });

  it('container health checks test liveness only: no sidecar is unhealthy because a dependency is down', () => {
    const t = regional['eu-west-1'] as Template;
    for (const name of ['sqs-listener', 'redis-listener', 'issuer']) {
      const command = (container(t, name).HealthCheck as Json).Command as string[];
      expect(command.slice(0, 3)).toEqual(['CMD', 'node', '-e']);
      expect(command[3]).toContain('/healthz');
      expect(command[3]).not.toContain('/readyz');
    }
  });

  it('runs Redis on loopback with keyspace notifications and no persistence', () => {
    const command = container(regional['eu-west-1'] as Template, 'redis').Command as string[];
    const arg = (flag: string) => command[command.indexOf(flag) + 1];
    expect(arg('--bind')).toBe('127.0.0.1');
    expect(arg('--notify-keyspace-events')).toBe('K$gx');
    expect(arg('--save')).toBe('');
    expect(arg('--appendonly')).toBe('no');
  });

  it('runs the containers non-root with read-only root filesystems, the render step excepted', () => {
    const t = regional['eu-west-1'] as Template;
    for (const c of containers(t)) expect(c.ReadonlyRootFilesystem, String(c.Name)).toBe(true);
    for (const name of LONG_RUNNING_CONTAINERS) {
      expect(String(container(t, name).User), name).not.toMatch(/^0(:|$)/);
    }
    const edgeMounts = (container(t, 'edge').MountPoints as Json[]).map((m) => [m.ContainerPath, m.ReadOnly]);
    expect(edgeMounts).toEqual([
      ['/etc/edge', true],
      ['/var/run/edge', false],
      ['/var/cache/edge', false],
      ['/tmp', false],
    ]);
    expect(container(t, 'edge').SystemControls).toEqual([
      { Namespace: 'net.ipv4.ip_unprivileged_port_start', Value: '0' },
    ]);
  });

  it('hands secrets to the containers from Secrets Manager, never as plain environment variables', () => {
    const t = regional['eu-west-1'] as Template;
    const secretNames = (name: string) => ((container(t, name).Secrets as Json[]) ?? []).map((s) => s.Name);
    expect(secretNames('edge')).toEqual(['EDGE_CONTROL_TOKEN']);
    expect(secretNames('sqs-listener')).toEqual(['EDGE_CONTROL_TOKEN']);
    expect(secretNames('edge-config')).toEqual(['EDGE_ACME_ACCOUNT_KEY', 'EDGE_TICKET_SECRET']);
    for (const c of containers(t)) {
      const names = ((c.Environment as Json[]) ?? []).map((e) => String(e.Name));
      expect(
        names.filter((n) => /TOKEN|PASSWORD|ACCOUNT_KEY$/.test(n)),
        String(c.Name),
      ).toEqual([]);
    }
  });

  it('generates the session ticket secret in the region, readable by the execution role alone', () => {
    const t = regional['eu-west-1'] as Template;
    type Secret = {
      Properties: { Description?: string; GenerateSecretString?: unknown; SecretString?: unknown };
    };
    const [id, secret] = Object.entries(
      t.findResources('AWS::SecretsManager::Secret') as Record<string, Secret>,
    ).find(([, r]) => String(r.Properties.Description).startsWith('Session ticket secret')) as [
      string,
      Secret,
    ];
    // Generated by Secrets Manager at deploy time: no value in the template.
    expect(secret.Properties.GenerateSecretString).toEqual({ PasswordLength: 64, ExcludePunctuation: true });
    expect(secret.Properties.SecretString).toBeUndefined();
    type Policy = { Properties: { Roles: { Ref: string }[] } };
    const readers = Object.values(t.findResources('AWS::IAM::Policy') as Record<string, Policy>)
      .filter((p) => JSON.stringify(p).includes(`"Ref":"${id}"`))
      .map((p) => p.Properties.Roles.map((r) => r.Ref).join());
    expect(readers).toHaveLength(1);
    expect(readers[0]).toMatch(/ExecutionRole/);
    expect(JSON.stringify(container(t, 'edge-config').Secrets)).toContain(id);
  });

  it('encrypts the regional DLQ and enforces TLS on it', () => {
    const t = regional['eu-west-1'] as Template;
    t.hasResourceProperties('AWS::SQS::Queue', {
      QueueName: 'edge-dlq',
      SqsManagedSseEnabled: true,
      MessageRetentionPeriod: 1209600,
    });
    t.hasResourceProperties('AWS::SQS::QueuePolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('scopes the task role to the queue prefix, the topic and its key, the table replicas and the platform zone', () => {
    const t = regional['us-east-1'] as Template;
    t.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: [
          {
            Sid: 'OwnTaskQueues',
            Effect: 'Allow',
            Action: [
              'sqs:ChangeMessageVisibility',
              'sqs:CreateQueue',
              'sqs:DeleteMessage',
              'sqs:DeleteQueue',
              'sqs:ListQueueTags',
              'sqs:ReceiveMessage',
              'sqs:TagQueue',
            ],
            Resource: partitionArn(':sqs:us-east-1:123456789012:edge-task-*'),
          },
          { Sid: 'FindOrphanedTaskQueues', Effect: 'Allow', Action: 'sqs:ListQueues', Resource: '*' },
          {
            Sid: 'DeadLetterMalformedEvents',
            Effect: 'Allow',
            Action: 'sqs:SendMessage',
            Resource: { 'Fn::GetAtt': [Match.stringLikeRegexp('^DeadLettersQueue'), 'Arn'] },
          },
          {
            Sid: 'EventTopic',
            Effect: 'Allow',
            Action: ['sns:Publish', 'sns:Subscribe', 'sns:Unsubscribe'],
            Resource: partitionArn(':sns:eu-west-1:123456789012:edge-events'),
          },
          {
            Sid: 'EventTopicEncryption',
            Effect: 'Allow',
            Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
            Resource: partitionArn(':kms:eu-west-1:123456789012:key/*'),
            Condition: {
              'ForAnyValue:StringEquals': { 'kms:ResourceAliases': 'alias/edge-events' },
              StringEquals: { 'kms:ViaService': 'sns.eu-west-1.amazonaws.com' },
            },
          },
          {
            Sid: 'PrivateKeyEncryption',
            Effect: 'Allow',
            Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
            Resource: { 'Fn::GetAtt': [Match.stringLikeRegexp('^PrivateKeysKey'), 'Arn'] },
            Condition: {
              'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': ['domain'] },
              Null: { 'kms:EncryptionContextKeys': 'false' },
            },
          },
          {
            Sid: 'StateTable',
            Effect: 'Allow',
            Action: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Scan', 'dynamodb:UpdateItem'],
            Resource: partitionArn(':dynamodb:us-east-1:123456789012:table/edge-state'),
          },
          {
            Sid: 'StateTableIssuance',
            Effect: 'Allow',
            Action: [
              'dynamodb:BatchGetItem',
              'dynamodb:DeleteItem',
              'dynamodb:GetItem',
              'dynamodb:PutItem',
              'dynamodb:UpdateItem',
            ],
            Resource: partitionArn(':dynamodb:eu-west-1:123456789012:table/edge-state'),
          },
          {
            Sid: 'Dns01ChallengeRecords',
            Effect: 'Allow',
            Action: 'route53:ChangeResourceRecordSets',
            Resource: partitionArn(':route53:::hostedzone/Z0123456789EXAMPLE'),
            Condition: {
              'ForAllValues:StringEquals': {
                'route53:ChangeResourceRecordSetsNormalizedRecordNames': ['_acme-challenge.platform.example'],
                'route53:ChangeResourceRecordSetsRecordTypes': ['TXT'],
              },
            },
          },
          {
            // Delegated DNS-01: TXT records one label under the challenge zone only.
            Sid: 'Dns01DelegatedRecords',
            Effect: 'Allow',
            Action: 'route53:ChangeResourceRecordSets',
            Resource: partitionArn(':route53:::hostedzone/Z0123456789EXAMPLE'),
            Condition: {
              'ForAllValues:StringLike': {
                'route53:ChangeResourceRecordSetsNormalizedRecordNames': [
                  '*.acme-delegation.platform.example',
                ],
              },
              'ForAllValues:StringEquals': { 'route53:ChangeResourceRecordSetsRecordTypes': ['TXT'] },
            },
          },
          {
            Sid: 'Dns01ChangeStatus',
            Effect: 'Allow',
            Action: 'route53:GetChange',
            Resource: partitionArn(':route53:::change/*'),
          },
          {
            Sid: 'AcmeAccountKey',
            Effect: 'Allow',
            Action: 'secretsmanager:GetSecretValue',
            Resource: partitionArn(
              ':secretsmanager:us-east-1:123456789012:secret:edge/acme-account-key-??????',
            ),
          },
        ],
      },
    });
  });

  it('health-checks the region through its canary over HTTPS with SNI, matching the body', () => {
    const t = regional['ap-southeast-1'] as Template;
    t.resourceCountIs('AWS::Route53::HealthCheck', 1);
    t.hasResourceProperties('AWS::Route53::HealthCheck', {
      HealthCheckConfig: {
        Type: 'HTTPS_STR_MATCH',
        FullyQualifiedDomainName: 'edge-health-ap-southeast-1.platform.example',
        Port: 443,
        ResourcePath: '/',
        EnableSNI: true,
        SearchString: 'edge-health ok ap-southeast-1',
        RequestInterval: 30,
        FailureThreshold: 3,
      },
    });
    // The canary's name is this region's NLB, not geolocated, so the check sees this region.
    const canary = resourcesOf(t, 'AWS::Route53::RecordSet').filter(
      (r) => r.Name === 'edge-health-ap-southeast-1.platform.example.',
    );
    expect(canary).toHaveLength(1);
    expect(canary[0]?.SetIdentifier).toBeUndefined();
    expect(JSON.stringify(canary[0]?.AliasTarget)).toContain('LoadBalancerNlb');
  });

  it('sends every location to its region through a failover pair that falls back to the nearest healthy region', () => {
    const t = regional['ap-southeast-1'] as Template;
    const records = resourcesOf(t, 'AWS::Route53::RecordSet');
    const summary = records
      .filter((r) => !String(r.Name).startsWith('edge-health-'))
      .map((r) => [
        r.Name,
        r.Type,
        r.SetIdentifier,
        r.GeoLocation ?? r.Failover ?? r.Region,
        r.HealthCheckId ? 'checked' : '-',
      ])
      .sort();
    const check = 'checked';
    expect(summary).toEqual(
      [
        ['any.edge.platform.example.', 'A', 'ap-southeast-1', 'ap-southeast-1', check],
        ['ap-southeast-1.edge.platform.example.', 'A', 'ap-southeast-1-primary', 'PRIMARY', check],
        ['ap-southeast-1.edge.platform.example.', 'A', 'ap-southeast-1-any', 'SECONDARY', '-'],
        ['edge.platform.example.', 'A', 'ap-southeast-1-continent-AS', { ContinentCode: 'AS' }, '-'],
        ['edge.platform.example.', 'A', 'ap-southeast-1-continent-OC', { ContinentCode: 'OC' }, '-'],
        ['edge.platform.example.', 'A', 'ap-southeast-1-country-IN', { CountryCode: 'IN' }, '-'],
        ['platform.example.', 'A', 'ap-southeast-1-continent-AS', { ContinentCode: 'AS' }, '-'],
        ['platform.example.', 'A', 'ap-southeast-1-continent-OC', { ContinentCode: 'OC' }, '-'],
        ['platform.example.', 'A', 'ap-southeast-1-country-IN', { CountryCode: 'IN' }, '-'],
      ].sort(),
    );
    const alias = (r: Json) => JSON.stringify(r.AliasTarget);
    for (const r of records) {
      expect(r.HostedZoneId).toBe('Z0123456789EXAMPLE');
      if (r.GeoLocation) expect(alias(r)).toContain('GeoDnsPrimaryA');
      if (r.Failover === 'SECONDARY') expect(alias(r)).toContain('GeoDnsAnyA');
      if (r.Failover === 'PRIMARY' || r.Region) {
        expect(alias(r)).toContain('LoadBalancerNlb');
        expect((r.AliasTarget as Json).EvaluateTargetHealth).toBe(true);
        expect(r.HealthCheckId).toEqual({ Ref: expect.stringMatching(/^GeoDnsHealthCheck/) });
      }
    }
  });

  it('writes the default geolocation record only in the default region', () => {
    const defaults = (region: string) =>
      resourcesOf(regional[region] as Template, 'AWS::Route53::RecordSet').filter(
        (r) => (r.GeoLocation as Json | undefined)?.CountryCode === '*',
      ).length;
    expect(defaults('eu-west-1')).toBe(2);
    expect(defaults('us-east-1')).toBe(0);
    expect(defaults('ap-southeast-1')).toBe(0);
  });

  it("notifies the region's alarm topic on ALARM and OK from every alarm", () => {
    const t = regional['us-east-1'] as Template;
    t.hasResourceProperties('AWS::SNS::Topic', { TopicName: 'edge-alarms' });
    // The edge's own alarms (target-tracking alarms belong to Application Auto Scaling).
    const alarms = resourcesOf(t, 'AWS::CloudWatch::Alarm').filter((a) =>
      String(a.AlarmDescription ?? '').startsWith('us-east-1:'),
    );
    expect(alarms).toHaveLength(10);
    for (const a of alarms) {
      for (const actions of [a.AlarmActions, a.OKActions]) {
        expect(actions).toEqual([{ Ref: expect.stringMatching(/^AlarmTopic/) }]);
      }
    }
  });

  it('alarms on unhealthy targets, dead letters, fallback certificates and 5xx, with a dashboard', () => {
    const t = regional['eu-west-1'] as Template;
    const alarms = resourcesOf(t, 'AWS::CloudWatch::Alarm');
    const described = alarms
      .map((a) => String(a.AlarmDescription ?? ''))
      .filter((d) => d.startsWith('eu-west-1:'));
    expect(described.sort()).toEqual([
      "eu-west-1: Let's Encrypt issuance budget headroom low",
      'eu-west-1: certificate renewals failing',
      'eu-west-1: certificates close to expiry with no renewal in progress',
      'eu-west-1: edge tasks failing the NLB health check',
      'eu-west-1: events in the dead-letter queue',
      'eu-west-1: expired certificates still served',
      'eu-west-1: handshakes answered with the fallback certificate',
      'eu-west-1: share of 5xx responses',
      'eu-west-1: share of certificate renewal orders failing',
      'eu-west-1: tasks not ready (Redis not bootstrapped, bus or table unreachable)',
    ]);
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'UnHealthyHostCount',
      Namespace: 'AWS/NetworkELB',
    });
    t.hasResourceProperties('AWS::Logs::MetricFilter', { FilterPattern: '{ $.status >= 500 }' });
    // Fallback lines are sampled and carry nginx's error-log prefix: the metric counts the lines.
    t.hasResourceProperties('AWS::Logs::MetricFilter', {
      FilterPattern: '"cert_fallback"',
      MetricTransformations: [Match.objectLike({ MetricName: 'FallbackCertificates', MetricValue: '1' })],
    });
    t.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
  });
});

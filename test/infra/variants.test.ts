import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseDeploymentConfig } from '../../lib/config/deployment-config.ts';
import { buildEdgeApp, type EdgeApp } from '../../lib/infra/edge-app.ts';
import { cdkContext, oneRegionConfig, registryImages } from './fixtures.ts';

// The options the example leaves off, all in one single-region app: dual stack, NAT, imported
// Elastic IPs, the auto-ssl engine and S3 website hosting.
let edge: EdgeApp;
let global: Template;
let regional: Template;

type Json = Record<string, unknown>;

beforeAll(() => {
  const config = parseDeploymentConfig(
    oneRegionConfig({
      regions: [
        {
          region: 'eu-west-1',
          availabilityZones: ['eu-west-1a', 'eu-west-1b'],
          elasticIps: ['eipalloc-0123456789abcdef0', 'eipalloc-0123456789abcdef1'],
        },
      ],
      network: { natGateways: 1, dualStack: true },
      tlsEngine: 'auto-ssl',
      originBucket: { enabled: true, websiteHosting: true },
    }),
  );
  edge = buildEdgeApp(config, { nag: false, images: registryImages(), appProps: { context: cdkContext() } });
  global = Template.fromStack(edge.global);
  regional = Template.fromStack(edge.regions[0] as never);
});

describe('deployment options', () => {
  it('passes cdk-nag with its acknowledgements', () => {
    const report = new AwsSolutionsChecks(edge.app).validateScope(edge.app);
    expect(report.violations.map((v) => v.ruleName)).toEqual([]);
  });

  it('publishes AAAA next to A records and makes the NLB dual-stack', () => {
    regional.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
      IpAddressType: 'dualstack',
    });
    const records = Object.values(regional.findResources('AWS::Route53::RecordSet')).map(
      (r) => r.Properties as Json,
    );
    const key = (r: Json) =>
      `${r.Name} ${r.SetIdentifier ?? ''} ${JSON.stringify(r.GeoLocation ?? r.Failover ?? '')}`;
    const of = (type: string) =>
      records
        .filter((r) => r.Type === type)
        .map(key)
        .sort();
    // Geolocation (2 names), the failover pair, the latency record and the canary: each in both families.
    expect(of('A')).toHaveLength(6);
    expect(of('AAAA')).toEqual(of('A'));
  });

  it('with NAT, runs the tasks in private subnets without public IPs', () => {
    regional.resourceCountIs('AWS::EC2::NatGateway', 1);
    regional.hasResourceProperties('AWS::ECS::Service', {
      NetworkConfiguration: { AwsvpcConfiguration: Match.objectLike({ AssignPublicIp: 'DISABLED' }) },
    });
  });

  it('attaches imported Elastic IPs to the NLB and creates none', () => {
    regional.resourceCountIs('AWS::EC2::EIP', 1); // the NAT gateway's own
    regional.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
      SubnetMappings: [
        Match.objectLike({ AllocationId: 'eipalloc-0123456789abcdef0' }),
        Match.objectLike({ AllocationId: 'eipalloc-0123456789abcdef1' }),
      ],
    });
  });

  it('with auto-ssl, runs no issuer sidecar and tells the edge its engine', () => {
    const [task] = Object.values(regional.findResources('AWS::ECS::TaskDefinition'));
    const containers = ((task?.Properties ?? {}) as Json).ContainerDefinitions as Json[];
    expect(containers.map((c) => c.Name)).toEqual([
      'edge-config',
      'redis',
      'sqs-listener',
      'redis-listener',
      'edge',
    ]);
    const render = containers.find((c) => c.Name === 'edge-config') as Json;
    const env = render.Environment as { Name: string; Value: string }[];
    const edgeConfig = JSON.parse(env.find((e) => e.Name === 'EDGE_CONFIG')?.Value ?? '{}');
    expect(edgeConfig.tls.engine).toBe('auto-ssl');
    expect(edgeConfig.tls.issuerUrl).toBeUndefined();
  });

  it('with website hosting, grants anonymous GetObject through the policy only, ACLs still blocked', () => {
    global.hasResourceProperties('AWS::S3::Bucket', {
      WebsiteConfiguration: { IndexDocument: 'index.html', ErrorDocument: '404.html' },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        IgnorePublicAcls: true,
        BlockPublicPolicy: false,
        RestrictPublicBuckets: false,
      },
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
    });
    global.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Sid: 'WebsiteEndpointReadsObjectsOnly',
            Action: 's3:GetObject',
            Principal: { AWS: '*' },
          }),
        ]),
      },
    });
  });

  it('makes a single-region deployment without table or secret replicas', () => {
    global.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      Replicas: [Match.objectLike({ Region: 'eu-west-1' })],
    });
    const [secret] = Object.values(global.findResources('AWS::SecretsManager::Secret'));
    expect(((secret?.Properties ?? {}) as Json).ReplicaRegions).toBeUndefined();
  });
});

import { App, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as route53 from 'aws-cdk-lib/aws-route53';
import { describe, expect, it } from 'vitest';
import { parseDeploymentConfig } from '../../lib/config/deployment-config.ts';
import { EdgeLoadBalancer } from '../../lib/infra/edge-load-balancer.ts';
import { EdgeNetwork } from '../../lib/infra/edge-network.ts';
import { GeoDnsRecords } from '../../lib/infra/geo-dns-records.ts';
import { GlobalStack } from '../../lib/infra/global-stack.ts';
import { oneRegionConfig } from './fixtures.ts';

// Constructs validate their own props early, with the value received in the message.
const env = { account: '123456789012', region: 'eu-west-1' };

describe('construct validation', () => {
  it('refuses a VPC with one availability zone', () => {
    const stack = new Stack(new App(), 'S', { env });
    expect(
      () =>
        new EdgeNetwork(stack, 'N', {
          cidr: '10.0.0.0/16',
          availabilityZones: ['eu-west-1a'],
          flowLogRetention: logs.RetentionDays.ONE_MONTH,
        }),
    ).toThrow('an edge VPC needs at least 2 availability zones, got 1');
  });

  it('refuses a wrong number of Elastic IPs', () => {
    const stack = new Stack(new App(), 'S', { env });
    const vpc = new ec2.Vpc(stack, 'V', { availabilityZones: ['eu-west-1a', 'eu-west-1b'], natGateways: 0 });
    expect(() => new EdgeLoadBalancer(stack, 'L', { vpc, elasticIps: ['eipalloc-00000000'] })).toThrow(
      'elasticIps needs one allocation per public subnet (2), got 1',
    );
  });

  it('refuses geolocation records for a region with no location', () => {
    const stack = new Stack(new App(), 'S', { env });
    const vpc = new ec2.Vpc(stack, 'V', { availabilityZones: ['eu-west-1a', 'eu-west-1b'], natGateways: 0 });
    const lb = new EdgeLoadBalancer(stack, 'L', { vpc });
    const zone = route53.HostedZone.fromHostedZoneAttributes(stack, 'Z', {
      hostedZoneId: 'Z1',
      zoneName: 'a.example',
    });
    expect(
      () =>
        new GeoDnsRecords(stack, 'G', {
          zone,
          recordNames: ['edge.a.example'],
          loadBalancer: lb.loadBalancer,
          region: 'eu-west-1',
          anyRegionName: 'any.edge.a.example',
          regionName: 'eu-west-1.edge.a.example',
          healthCheckName: 'edge-health-eu-west-1.a.example',
          healthCheckSearchString: 'edge-health ok eu-west-1',
        }),
    ).toThrow('region eu-west-1 has no geolocation mapped to it; map a continent or country to it');
  });

  it('refuses a global stack outside the home region', () => {
    const config = parseDeploymentConfig(oneRegionConfig());
    expect(() => new GlobalStack(new App(), 'G', { config, env: { ...env, region: 'us-east-1' } })).toThrow(
      'the global stack must be pinned to the home region eu-west-1, got us-east-1',
    );
  });
});

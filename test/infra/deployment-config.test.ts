import { describe, expect, it } from 'vitest';
import {
  DeploymentConfigError,
  deploymentNames,
  parseDeploymentConfig,
} from '../../lib/config/deployment-config.ts';
import { exampleConfig, oneRegionConfig } from './fixtures.ts';

function messageOf(input: unknown): string {
  try {
    parseDeploymentConfig(input);
  } catch (err) {
    expect(err).toBeInstanceOf(DeploymentConfigError);
    return (err as Error).message;
  }
  throw new Error('expected the config to be rejected');
}

describe('deployment config', () => {
  it('accepts the example config with its three regions and fills defaults', () => {
    const c = parseDeploymentConfig(exampleConfig());
    expect(c.regions.map((r) => r.region)).toEqual(['eu-west-1', 'us-east-1', 'ap-southeast-1']);
    expect(c.tlsEngine).toBe('native');
    expect(c.network.natGateways).toBe(0);
    expect(Object.isFrozen(c.regions[0])).toBe(true);
  });

  it('derives the shared names from the deployment name', () => {
    const names = deploymentNames(parseDeploymentConfig(oneRegionConfig({ name: 'cdn' })));
    expect(names).toMatchObject({
      topic: 'cdn-events',
      table: 'cdn-state',
      queuePrefix: 'cdn-task-',
      deadLetterQueue: 'cdn-dlq',
      edgeHostname: 'edge.platform.example',
    });
  });

  it('rejects a home region that is not an edge region', () => {
    expect(messageOf(oneRegionConfig({ homeRegion: 'us-east-1' }))).toBe(
      'invalid deployment config:\n  homeRegion: "us-east-1" is not one of the edge regions (eu-west-1)',
    );
  });

  it('rejects a single availability zone', () => {
    expect(
      messageOf(oneRegionConfig({ regions: [{ region: 'eu-west-1', availabilityZones: ['eu-west-1a'] }] })),
    ).toBe('invalid deployment config:\n  regions.0.availabilityZones: needs at least 2 availability zones');
  });

  it('rejects an availability zone of another region', () => {
    const input = oneRegionConfig({
      regions: [{ region: 'eu-west-1', availabilityZones: ['eu-west-1a', 'us-east-1b'] }],
    });
    expect(messageOf(input)).toBe(
      'invalid deployment config:\n  regions.0.availabilityZones.1: "us-east-1b" is not in eu-west-1',
    );
  });

  it('rejects geolocation targets that are not edge regions', () => {
    const input = oneRegionConfig({ geolocation: { default: 'eu-west-1', continents: { NA: 'us-west-2' } } });
    expect(messageOf(input)).toBe(
      'invalid deployment config:\n  geolocation.continents.NA: "us-west-2" is not one of the edge regions (eu-west-1)',
    );
  });

  it('rejects an unknown continent code', () => {
    const input = oneRegionConfig({
      geolocation: { default: 'eu-west-1', continents: { XX: 'eu-west-1' } as never },
    });
    expect(messageOf(input)).toBe(
      'invalid deployment config:\n  geolocation.continents: Unrecognized key: "XX"',
    );
  });

  it('rejects a region that no geolocation routes to', () => {
    const input = oneRegionConfig({
      regions: [
        { region: 'eu-west-1', availabilityZones: ['eu-west-1a', 'eu-west-1b'] },
        { region: 'us-east-1', availabilityZones: ['us-east-1a', 'us-east-1b'] },
      ],
    });
    expect(messageOf(input)).toBe(
      'invalid deployment config:\n  regions.1.region: us-east-1 receives no traffic; map a continent or country to it',
    );
  });

  it('rejects a platform domain outside the hosted zone', () => {
    expect(messageOf(oneRegionConfig({ platformDomain: 'other.example' }))).toBe(
      'invalid deployment config:\n  platformDomain: "other.example" is not inside the hosted zone "platform.example"',
    );
  });

  it('rejects a memory size Fargate does not offer for the CPU size', () => {
    expect(messageOf(oneRegionConfig({ task: { cpu: 256, memoryMiB: 4096 } }))).toBe(
      'invalid deployment config:\n  task.memoryMiB: 4096 MiB is not a Fargate size for 256 CPU units (512-2048)',
    );
  });

  it('rejects maxTasks below minTasks', () => {
    expect(messageOf(oneRegionConfig({ task: { minTasks: 4, maxTasks: 2 } }))).toBe(
      'invalid deployment config:\n  regions.0.maxTasks: maxTasks 2 is below minTasks 4',
    );
  });

  it('rejects a wrong number of Elastic IP allocations', () => {
    const input = oneRegionConfig({
      regions: [
        {
          region: 'eu-west-1',
          availabilityZones: ['eu-west-1a', 'eu-west-1b'],
          elasticIps: ['eipalloc-0123456789abcdef0'],
        },
      ],
    });
    expect(messageOf(input)).toBe(
      'invalid deployment config:\n  regions.0.elasticIps: needs one allocation per availability zone (2), got 1',
    );
  });

  it('rejects a malformed account id and an unknown engine, listing both', () => {
    expect(messageOf(oneRegionConfig({ account: '1234', tlsEngine: 'openssl' as never }))).toBe(
      'invalid deployment config:\n  account: must be a 12-digit AWS account id\n  tlsEngine: Invalid option: expected one of "native"|"auto-ssl"',
    );
  });

  it('rejects a log retention CloudWatch does not offer', () => {
    expect(messageOf(oneRegionConfig({ logRetentionDays: 31 }))).toBe(
      'invalid deployment config:\n  logRetentionDays: must be a CloudWatch Logs retention period such as 30',
    );
  });
});

import { describe, expect, it } from 'vitest';
import { estimate, PRICES, total } from '../../bin/cost-estimate.ts';
import { parseDeploymentConfig } from '../../lib/config/deployment-config.ts';
import { exampleConfig } from './fixtures.ts';

const config = parseDeploymentConfig(exampleConfig());
const options = { logGbPerRegion: 10, nlbLcus: 1, natGbPerGateway: 50, tableGb: 1 };

describe('cost estimate', () => {
  it('prices the minimum tasks of every region from Fargate list prices', () => {
    const fargate = estimate(config, { ...options, natGatewaysPerRegion: 0 })[0];
    const perTask =
      730 * (1 * PRICES.fargateVcpuHour + 2 * PRICES.fargateGbHour + 30 * PRICES.fargateStorageGbHour);
    expect(fargate?.monthlyUsd).toBeCloseTo(6 * perTask, 6);
  });

  it('adds the NAT gateways and drops the task public IPs when NAT is on', () => {
    const without = estimate(config, { ...options, natGatewaysPerRegion: 0 });
    const withNat = estimate(config, { ...options, natGatewaysPerRegion: 2 });
    const line = (lines: typeof without, prefix: string) => lines.find((l) => l.item.startsWith(prefix));
    expect(line(without, 'NAT')?.monthlyUsd).toBe(0);
    expect(line(withNat, 'NAT')?.monthlyUsd).toBeCloseTo(6 * (730 * PRICES.natHour + 50 * PRICES.natGb), 6);
    expect(line(without, 'Public IPv4')?.item).toBe('Public IPv4 addresses: 12');
    expect(line(withNat, 'Public IPv4')?.item).toBe('Public IPv4 addresses: 12');
    expect(total(withNat)).toBeGreaterThan(total(without));
  });
});

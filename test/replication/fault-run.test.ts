import { beforeAll, describe, expect, it } from 'vitest';
import { faultRun } from '../../bench/replication/fault-run.ts';
import { TestBed } from '../harness/testbed.ts';
import { ReplicaFixture } from './replica-fixture.ts';

const bed = new TestBed('fault-run');
let fx: ReplicaFixture;

beforeAll(async () => {
  fx = await ReplicaFixture.start(bed);
});

describe('fault run (short; bench/fault-run.ts runs it for minutes)', () => {
  it('loses and duplicates no certificate under random duplicate, reorder and drop', async () => {
    const result = await faultRun({
      store: fx.store,
      redisPort: fx.redisPort,
      durationMs: 3000,
      seed: 42,
      opsPerSecond: 25,
      faults: { duplicate: 0.2, reorder: 0.2, drop: 0.1 },
    });
    expect(result.issued).toBeGreaterThan(10);
    expect(result.faults.duplicated + result.faults.reordered + result.faults.dropped).toBeGreaterThan(0);
    expect(result.lostInStore).toBe(0);
    expect(result.lostInRegions).toBe(0);
    expect(result.duplicateAnnouncements).toBe(0);
  });
});

import { describe, expect, it } from 'vitest';
import { chaosRun } from '../../bench/chaos/run.ts';

// The chaos run, short (bench/chaos; the 10-minute figures are in bench/README.md): three local
// regions under load, every kind of process killed -9 and restarted, events duplicated and
// reordered, the control plane changing tenants, domains and purges. No timing is asserted beyond
// a generous convergence deadline; what must hold is that nothing is lost.
describe('chaos run (short)', () => {
  it('every region converges to the table after every fault: 0 certificates lost, 0 purges lost', async () => {
    const report = await chaosRun({
      durationMs: 50_000,
      faultIntervalMs: [1500, 4000],
      downMs: [200, 1500],
      convergenceDeadlineMs: 20_000,
      stableTenants: 2,
      log: (line) => console.info(`[chaos] ${line}`),
    });
    console.info(
      `[figure] chaos run, seed ${report.seed}: start-up ${report.startupSeconds.toFixed(1)} s, ${report.faults.length} faults, ` +
        `convergence ${JSON.stringify(report.convergence)}, requests ${report.requests.total} (${report.requests.failed} failed)`,
    );
    const stuck = report.faults.filter((f) => f.convergedMs === undefined);
    expect(stuck.map((f) => `${f.target}: ${f.error ?? JSON.stringify(f.differences?.slice(0, 3))}`)).toEqual(
      [],
    );
    expect(report.finalDifferences).toEqual([]);
    expect(report.converged).toBe(true);
    expect(report.certificatesLost).toBe(0);
    expect(report.issuedNotPersisted).toBe(0);
    expect(report.purgesLost).toBe(0);
    // The load asks only for hosts the run never removes: a 404 is a region that forgot a live record.
    expect(report.requests.notFound).toBe(0);
    expect(new Set(report.faults.map((f) => f.kind)).size).toBeGreaterThanOrEqual(6);
  }, 170_000);
});

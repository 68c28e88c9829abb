// The chaos run: `npm run chaos -- --minutes 10 [--seed 7] [--keep] [--json out.json]`.
// Exits 1 when a region did not converge, or a certificate or a purge was lost.
import { writeFile } from 'node:fs/promises';
import { type ChaosReport, chaosRun } from './run.ts';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
};

const minutes = Number(arg('minutes') ?? 2);
const report = await chaosRun({
  durationMs: minutes * 60_000,
  seed: arg('seed') === undefined ? undefined : Number(arg('seed')),
  keep: process.argv.includes('--keep'),
  log: (line) => console.log(`[chaos] ${line}`),
});
const json = arg('json');
if (json) await writeFile(json, `${JSON.stringify(report, null, 2)}\n`);
console.log(summary(report));
if (!report.converged || report.certificatesLost || report.purgesLost || report.issuedNotPersisted)
  process.exitCode = 1;

function summary(r: ChaosReport): string {
  const ms = (v: number) => (Number.isNaN(v) ? '-' : `${Math.round(v)} ms`);
  const lines = [
    '',
    `chaos run: ${r.chaosSeconds.toFixed(0)} s of faults after ${r.startupSeconds.toFixed(0)} s of start-up, seed ${r.seed}`,
    '',
    'fault kind        count  converged p50  p99       max       not converged',
    ...Object.entries(r.convergence).map(
      ([kind, c]) =>
        `${kind.padEnd(17)} ${String(c.count).padStart(5)}  ${ms(c.p50).padStart(13)}  ${ms(c.p99).padEnd(9)} ${ms(c.max).padEnd(9)} ${c.notConverged}`,
    ),
    '',
    `requests: ${r.requests.total}, failed ${r.requests.failed} (${((100 * r.requests.failed) / Math.max(1, r.requests.total)).toFixed(2)} %)`,
    `  404 (unexpected: the load asks only for hosts the run never removes): ${r.requests.notFound}`,
    ...Object.entries(r.requests.byKind)
      .sort((a, b) => b[1] - a[1])
      .map(([k, n]) => `  during ${k}: ${n}`),
    `control plane: ${JSON.stringify(r.churn.ops)}; publishes repeated: ${r.churn.publishRetries}; failed: ${JSON.stringify(r.churn.failed)}`,
    `bus: ${r.bus.duplicated} events duplicated, ${r.bus.reordered} older events re-sent after newer ones`,
    '',
    r.converged
      ? `every region converged to the table (${r.finalConvergenceMs} ms after the last change)`
      : `NOT CONVERGED: ${r.finalDifferences.length} differences remain, e.g. ${r.finalDifferences
          .slice(0, 10)
          .map((d) => `${d.region} ${d.key} ${d.what}`)
          .join('; ')}`,
    `certificates lost: ${r.certificatesLost}; issued but never persisted: ${r.issuedNotPersisted}; purges lost: ${r.purgesLost}`,
  ];
  const stuck = r.faults.filter((f) => f.convergedMs === undefined);
  if (stuck.length) {
    lines.push('', 'faults after which the regions did not converge:');
    for (const f of stuck)
      lines.push(
        `  ${f.atS.toFixed(0)} s ${f.target}: ${
          f.error ??
          (f.differences ?? [])
            .map((d) => `${d.region} ${d.key} ${d.what}`)
            .slice(0, 5)
            .join('; ')
        }`,
      );
  }
  for (const f of stuck) for (const d of f.diagnosis ?? []) lines.push(`    ${d}`);
  for (const d of r.finalDiagnosis ?? []) lines.push(`  at the end: ${d}`);
  if (r.dir) lines.push('', `logs: ${r.dir}`);
  return lines.join('\n');
}

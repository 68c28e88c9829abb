import { round } from './stats.ts';

/** One measured side of one round. */
export interface Sample {
  /** Operations per second (requests or handshakes). */
  readonly rate: number;
  readonly ops: number;
  readonly elapsedMs: number;
  /** CPU seconds the server side used during the round (nginx, plus Redis for the edge). */
  readonly serverCpuSeconds: number;
  readonly errors: number;
}

export interface Figure {
  readonly id: string;
  readonly label: string;
  readonly unit: string;
  readonly edge: number;
  readonly baseline: number;
  readonly ratio: number;
  readonly target: number;
  readonly pass: boolean;
  /** Server CPU microseconds per operation (median over rounds). */
  readonly edgeCpuUsPerOp: number;
  readonly baselineCpuUsPerOp: number;
  /** Server CPU use while loaded, as a share of the wall clock (1 = one core busy). */
  readonly edgeBusy: number;
  readonly baselineBusy: number;
  readonly rounds: readonly { readonly baseline: Sample; readonly edge: Sample }[];
  /** Edge counters during the edge rounds (certificate tiers, cache statuses). */
  readonly edgeCounters: Record<string, number>;
}

function pct(x: number): string {
  return Number.isFinite(x) ? `${Math.round(x * 100)}%` : '-';
}

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

/** Share of the CPU budget a server used; below ~0.9 the load generator, not the server, was the limit. */
export function saturation(busy: number, budgetCores: number): number {
  return budgetCores > 0 ? busy / budgetCores : Number.NaN;
}

export function formatTable(figures: readonly Figure[], budgetCores: number): string {
  const header = [
    'figure',
    'edge',
    'baseline',
    'ratio',
    'target',
    'result',
    'cpu µs/op e|b',
    'budget used e|b',
  ];
  const rows = figures.map((f) => [
    f.label,
    `${round(f.edge)} ${f.unit}`,
    `${round(f.baseline)} ${f.unit}`,
    f.ratio.toFixed(3),
    `≥ ${f.target.toFixed(2)}`,
    f.pass ? 'PASS' : 'FAIL',
    `${round(f.edgeCpuUsPerOp)} | ${round(f.baselineCpuUsPerOp)}`,
    budgetCores > 0
      ? `${pct(saturation(f.edgeBusy, budgetCores))} | ${pct(saturation(f.baselineBusy, budgetCores))}`
      : `${f.edgeBusy.toFixed(2)} | ${f.baselineBusy.toFixed(2)} cores`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => pad(c, widths[i] ?? 0, i >= 1 && i <= 3)).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

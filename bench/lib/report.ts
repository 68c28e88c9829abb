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
  /** With BENCH_PAIRED=1 (handshake figures): median(edge) ÷ median(baseline), for comparison. */
  readonly ratioOfMedians?: number;
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
  /** Caddy's median (handshake figures, when Caddy ran), with its CPU per handshake and load. */
  readonly caddy?: number;
  readonly caddyCpuUsPerOp?: number;
  readonly caddyBusy?: number;
  /** Key-exchange group each side's handshakes used (the client's first handshake per side). */
  readonly groups?: Record<string, string | undefined>;
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

/** The peer lines under the table: edge/Caddy and edge/static, CPU per handshake, groups. */
export function formatPeers(figures: readonly Figure[], budgetCores: number): string {
  const lines: string[] = [];
  for (const f of figures) {
    if (!f.groups) continue;
    const g = f.groups;
    const groups = `groups: edge ${g.edge ?? '-'}, static ${g.baseline ?? '-'}, caddy ${g.caddy ?? '-'}`;
    if (f.caddy === undefined) {
      lines.push(`${f.label}: edge/static ${f.ratio.toFixed(3)}; ${groups}`);
      continue;
    }
    const cpu = (x: number | undefined) => (x === undefined ? '-' : round(x));
    lines.push(
      `${f.label}: edge/static ${f.ratio.toFixed(3)}, edge/Caddy ${(f.edge / f.caddy).toFixed(3)} ` +
        `(Caddy ${round(f.caddy)} ${f.unit}, static/Caddy ${(f.baseline / f.caddy).toFixed(3)}); ` +
        `cpu µs/handshake edge ${cpu(f.edgeCpuUsPerOp)} | static ${cpu(f.baselineCpuUsPerOp)} | Caddy ${cpu(f.caddyCpuUsPerOp)}` +
        `${budgetCores > 0 && f.caddyBusy !== undefined ? ` (Caddy used ${pct(saturation(f.caddyBusy, budgetCores))} of its budget)` : ''}; ${groups}`,
    );
  }
  return lines.join('\n');
}

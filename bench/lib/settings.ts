/** Bench parameters, each overridable from the environment (BENCH_*). */

import { caddyBinary } from './caddy.ts';

function num(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got "${raw}"`);
  return n;
}

function flag(name: string, fallback: boolean): boolean {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  return !['0', 'false', 'no', 'off'].includes(raw.toLowerCase());
}

export interface BenchSettings {
  /** nginx worker_processes for both servers. */
  readonly workers: number;
  /**
   * CPU budget of each server in cores (a cgroup CFS quota); the load generators get the rest of
   * the machine, so the server is the bottleneck. 0 turns the budget off.
   */
  readonly serverCores: number;
  /** Instead of (or as well as) a budget: pin servers to serverCpus and load generators to clientCpus. */
  readonly pin: boolean;
  readonly serverCpus: string;
  readonly clientCpus: string;
  /** Alternating rounds per figure: baseline, edge, baseline, edge, ... */
  readonly rounds: number;
  /** Seconds per cached-requests round (wrk -d). */
  readonly httpSeconds: number;
  readonly httpConnections: number;
  readonly httpThreads: number;
  /** Milliseconds per handshake round (cold rounds also stop when their names run out). */
  readonly handshakeMs: number;
  /** Connections in flight per handshake client process. */
  readonly handshakeConcurrency: number;
  /** Handshake client processes run side by side (Node is single-threaded). */
  readonly handshakeProcesses: number;
  /** Names in the warm set (cycled over in the warm rounds; the LRU is sized to hold them). */
  readonly warmNames: number;
  /** Distinct ECDSA keys/certificates, shared by all the names. */
  readonly distinctCerts: number;
  /** Certificate counts to load into Redis, in increasing order. */
  readonly datasets: readonly number[];
  readonly keepDir: boolean;
  /** Profile one extra, unmeasured round of each side with perf (bench/results/perf-*.txt). */
  readonly perf: boolean;
  /** Time each Lua step of the hot paths in isolation (bench/lib/costs.ts). */
  readonly costs: boolean;
  /** Caddy as a third server in the handshake figures (default: when `caddy` is installed). */
  readonly caddy: boolean;
  /** Key-exchange groups the handshake clients offer (BENCH_GROUPS, e.g. X25519); default: Node's. */
  readonly groups?: string;
  /** Which figure groups run (BENCH_FIGURES, e.g. `cached` for the cached-request figures alone). */
  readonly figures: readonly FigureGroup[];
  /**
   * The baseline also reads the edge's session-ticket key files (BENCH_BASELINE_TICKET_KEYS=1):
   * a static nginx that resumes across instances needs key files too, and nginx then encrypts
   * tickets through its own key callback instead of OpenSSL's built-in keys.
   */
  readonly baselineTicketKeys: boolean;
  /** The edge's certificate push (tls.pushCertificates); off, cold names are read from Redis. */
  readonly push: boolean;
  /** Handshake rounds of the baseline and the edge at the same time (edge-vs-nginx.ts, pair()). */
  readonly paired: boolean;
  /** The edge's tls.lruSize; default max(2000, 2 × BENCH_WARM_NAMES). */
  readonly lruSize: number | undefined;
}

export type FigureGroup = 'cached' | 'handshakes';
const FIGURE_GROUPS: readonly FigureGroup[] = ['cached', 'handshakes'];

function figureGroups(): FigureGroup[] {
  const raw = process.env.BENCH_FIGURES;
  if (raw === undefined || raw.trim() === '') return [...FIGURE_GROUPS];
  const groups = raw.split(',').map((s) => s.trim());
  for (const g of groups) {
    if (!FIGURE_GROUPS.includes(g as FigureGroup))
      throw new Error(`BENCH_FIGURES lists ${FIGURE_GROUPS.join(', ')}; got "${g}"`);
  }
  return groups as FigureGroup[];
}

export function loadSettings(): BenchSettings {
  const workers = num('BENCH_WORKERS', 1);
  const warmNames = num('BENCH_WARM_NAMES', 1000);
  const datasets = (process.env.BENCH_DATASETS ?? '10000,100000')
    .split(',')
    .map((s) => Number(s.trim()))
    .filter((n) => Number.isInteger(n) && n > 0)
    .sort((a, b) => a - b);
  if (datasets.length === 0)
    throw new Error('BENCH_DATASETS must list certificate counts, e.g. 10000,100000');
  if (datasets[0] !== undefined && datasets[0] <= warmNames * 2) {
    throw new Error('the smallest dataset must hold more than twice BENCH_WARM_NAMES names');
  }
  return {
    workers,
    serverCores: num('BENCH_SERVER_CPU', 0.3),
    pin: flag('BENCH_PIN', false),
    serverCpus: process.env.BENCH_SERVER_CPUS ?? '0',
    clientCpus: process.env.BENCH_CLIENT_CPUS ?? '1',
    rounds: Math.max(1, num('BENCH_ROUNDS', 3)),
    httpSeconds: Math.max(1, num('BENCH_HTTP_SECONDS', 10)),
    httpConnections: Math.max(1, num('BENCH_HTTP_CONNECTIONS', 64)),
    httpThreads: Math.max(1, num('BENCH_HTTP_THREADS', 2)),
    handshakeMs: Math.max(500, num('BENCH_HANDSHAKE_SECONDS', 8) * 1000),
    handshakeConcurrency: Math.max(1, num('BENCH_HANDSHAKE_CONCURRENCY', 32)),
    handshakeProcesses: Math.max(1, num('BENCH_HANDSHAKE_PROCESSES', 2)),
    warmNames,
    distinctCerts: Math.max(1, num('BENCH_DISTINCT_CERTS', 8)),
    datasets,
    keepDir: flag('BENCH_KEEP', false),
    perf: flag('BENCH_PERF', false),
    costs: flag('BENCH_COSTS', true),
    caddy: flag('BENCH_CADDY', caddyBinary() !== undefined),
    groups: process.env.BENCH_GROUPS || undefined,
    figures: figureGroups(),
    baselineTicketKeys: flag('BENCH_BASELINE_TICKET_KEYS', false),
    push: flag('BENCH_PUSH', true),
    paired: flag('BENCH_PAIRED', false),
    lruSize: process.env.BENCH_LRU_SIZE ? num('BENCH_LRU_SIZE', 2000) : undefined,
  };
}

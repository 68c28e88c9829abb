/**
 * Resumed handshakes when the returning visitor lands on another task: two edges (real nginx,
 * separate run directories, one worker each) sharing one region secret, and a third with its own.
 * The handshake client's `--mode resume --other-port` alternates each name's visits between two
 * edges, so every session offered was issued by the other one. Three cases, alternating, each
 * `BENCH_ROUNDS` times (default 3):
 *   same edge (a→a)          the returning visitor comes back to the same task;
 *   across, one secret (a↔b) another task of the region: resumes with the region's ticket keys;
 *   across, two secrets (a↔c) a task with other keys: every handshake is a full one.
 * Prints per case the rate, the share of handshakes that resumed and the edges' CPU µs per
 * handshake (/proc, master and workers). No CPU budget: on a shared machine, read the CPU figure.
 *
 *   npx tsx bench/resumed-across.ts
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type LocalEdge, startEdge } from '../lib/local/edge-server.ts';
import { freePort } from '../lib/local/ports.ts';
import { startRedisServer } from '../lib/local/redis-server.ts';

const CLIENT = fileURLToPath(new URL('./handshake-client.ts', import.meta.url));
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const NAMES = 100;

interface ClientResult {
  completed: number;
  resumed: number;
  rate: number;
  errors: number;
}

/** User + system seconds of an nginx master and its workers. */
function cpuSeconds(master: number): number {
  const children = execFileSync('pgrep', ['-P', String(master)], { encoding: 'utf8' })
    .trim()
    .split('\n');
  let ticks = 0;
  for (const pid of [master, ...children.map(Number)]) {
    const fields = (readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1] ?? '').split(' ');
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / 100;
}

function client(port: number, otherPort?: number): Promise<ClientResult> {
  const args = ['--import', 'tsx', CLIENT, '--port', String(port), '--mode', 'resume', '--from', '0'];
  args.push('--to', String(NAMES), '--concurrency', '16', '--duration-ms', '5000');
  if (otherPort !== undefined) args.push('--other-port', String(otherPort));
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
    });
    p.on('exit', (code) => {
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as ClientResult);
      } catch {
        reject(new Error(`handshake client exited ${code} without a result`));
      }
    });
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

const root = mkdtempSync(join(tmpdir(), 'edge-resumed-across-'));
chmodSync(root, 0o755); // a root master's workers (nobody) enter the run directories
const stops: (() => Promise<void>)[] = [];
try {
  const redisPort = await freePort();
  const redis = await startRedisServer({ port: redisPort, dir: root });
  stops.push(() => redis.stop());
  const edge = async (name: string, secretFile: string): Promise<LocalEdge> => {
    const dir = join(root, name);
    mkdirSync(dir);
    const [http, https, control] = [await freePort(), await freePort(), await freePort()];
    const e = await startEdge({
      dir,
      controlToken: 't'.repeat(32),
      ticketSecretFile: join(root, secretFile),
      config: {
        region: 'bench',
        platformDomain: 'platform.test',
        listen: { address: '127.0.0.1', httpPort: http, httpsPort: https, controlPort: control },
        redis: { port: redisPort },
        nginx: { workerProcesses: 1 },
        limits: { connectionsPerIp: 0, requestsPerSecondPerIp: 0 },
      },
    });
    stops.push(() => e.process.stop());
    return e;
  };
  const a = await edge('a', 'region-secret');
  const b = await edge('b', 'region-secret');
  const c = await edge('c', 'other-secret');
  const port = (e: LocalEdge) => e.config.listen.httpsPort;
  const pid = (e: LocalEdge) => e.process.pid as number;
  const cases: [string, () => Promise<ClientResult>, number[]][] = [
    ['same edge (a→a)', () => client(port(a)), [pid(a)]],
    ['across, one region secret (a↔b)', () => client(port(a), port(b)), [pid(a), pid(b)]],
    ['across, two secrets (a↔c)', () => client(port(a), port(c)), [pid(a), pid(c)]],
  ];
  const out = new Map<string, { rate: number[]; share: number[]; cpuUs: number[] }>();
  for (let round = 1; round <= ROUNDS; round++) {
    for (const [name, run, pids] of cases) {
      const before = pids.reduce((s, p) => s + cpuSeconds(p), 0);
      const r = await run();
      const used = pids.reduce((s, p) => s + cpuSeconds(p), 0) - before;
      const row = out.get(name) ?? { rate: [], share: [], cpuUs: [] };
      out.set(name, row);
      row.rate.push(Math.round(r.rate));
      row.share.push(r.completed > 0 ? r.resumed / r.completed : 0);
      row.cpuUs.push(r.completed > 0 ? Math.round((used * 1e6) / r.completed) : 0);
      console.log(`round ${round}/${ROUNDS} ${name}: ${JSON.stringify(r)}`);
    }
  }
  for (const [name, row] of out) {
    console.log(
      `${name}: ${median(row.rate)} hs/s, resumed share ${median(row.share).toFixed(3)}, ` +
        `cpu µs/handshake ${median(row.cpuUs)} (medians of ${ROUNDS})`,
    );
  }
} finally {
  for (const stop of stops.reverse()) await stop().catch(() => {});
  rmSync(root, { recursive: true, force: true });
}

import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../lib/local/ports.ts';
import type { TestBed } from '../harness/testbed.ts';

/** Every port bin/local-edge.ts takes from EDGE_<NAME>_PORT. */
const PORTS = [
  'HTTP',
  'HTTPS',
  'CONTROL',
  'REDIS',
  'ORIGIN',
  'ISSUER',
  'DYNAMODB',
  'API',
  'BUS',
  'SQS_LISTENER',
  'REDIS_LISTENER',
] as const;

export interface QuickStart {
  readonly child: ChildProcess;
  readonly ports: Readonly<Record<(typeof PORTS)[number], number>>;
  /** Its run directory (logs, pebble-root.pem, api-secret). */
  readonly runDir: string;
  /** What it printed so far (stdout and stderr). */
  output(): string;
  /** SIGTERM; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** The README's `npm start` (bin/local-edge.ts, here without the setup step), on free ports. */
export async function startQuickStart(bed: TestBed, timeoutMs = 120_000): Promise<QuickStart> {
  const ports = {} as Record<(typeof PORTS)[number], number>;
  for (const name of PORTS) ports[name] = await freePort();
  // nginx's workers (nobody, when the tests run as root) must reach the run directory's cache.
  chmodSync(bed.dir, 0o755);
  const runDir = join(bed.dir, 'run');
  const env: NodeJS.ProcessEnv = { ...process.env, EDGE_RUN_DIR: runDir };
  // The child picks its own ports (Pebble's) from a block of its own, not this worker's.
  delete env.VITEST_POOL_ID;
  delete env.VITEST_WORKER_ID;
  for (const [name, port] of Object.entries(ports)) env[`EDGE_${name}_PORT`] = String(port);
  const child = spawn(process.execPath, ['--import', 'tsx', 'bin/local-edge.ts'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (c) => {
    output += c;
  });
  child.stderr?.on('data', (c) => {
    output += c;
  });
  const stop = async () => {
    if (child.exitCode !== null) return child.exitCode;
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    return exited;
  };
  bed.onStop(async () => {
    await stop();
  });
  const deadline = Date.now() + timeoutMs;
  while (!output.includes('The local edge is running')) {
    if (child.exitCode !== null) throw new Error(`bin/local-edge.ts exited early:\n${output}`);
    if (Date.now() > deadline) throw new Error(`bin/local-edge.ts did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, ports, runDir, output: () => output, stop };
}

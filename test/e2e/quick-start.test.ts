import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort } from '../../lib/local/ports.ts';
import { httpsGet } from '../harness/clients.ts';
import { TestBed } from '../harness/testbed.ts';

// The README's `npm start` (bin/local-edge.ts, here without the setup step), on free ports.
const bed = new TestBed('quick-start');
let child: ChildProcess;
let output = '';
const ports: Record<string, number> = {};

beforeAll(async () => {
  for (const name of ['HTTP', 'HTTPS', 'CONTROL', 'REDIS', 'ORIGIN', 'ISSUER', 'DYNAMODB']) {
    ports[name] = await freePort();
  }
  // nginx's workers (nobody, when the tests run as root) must reach the run directory's cache.
  chmodSync(bed.dir, 0o755);
  const env: NodeJS.ProcessEnv = { ...process.env, EDGE_RUN_DIR: join(bed.dir, 'run') };
  // The child picks its own ports (Pebble's) from a block of its own, not this worker's.
  delete env.VITEST_POOL_ID;
  delete env.VITEST_WORKER_ID;
  for (const [name, port] of Object.entries(ports)) env[`EDGE_${name}_PORT`] = String(port);
  child = spawn(process.execPath, ['--import', 'tsx', 'bin/local-edge.ts'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (c) => {
    output += c;
  });
  child.stderr?.on('data', (c) => {
    output += c;
  });
  const deadline = Date.now() + 60_000;
  while (!output.includes('The local edge is running')) {
    if (child.exitCode !== null) throw new Error(`bin/local-edge.ts exited early:\n${output}`);
    if (Date.now() > deadline) throw new Error(`bin/local-edge.ts did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
});

afterAll(async () => {
  if (child.exitCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
});

it('serves the demo tenant in its platform forms', async () => {
  const res = await httpsGet({
    port: ports.HTTPS as number,
    host: 'platform.localhost',
    path: '/demo/about.txt',
  });
  expect(res.status).toBe(200);
  expect(res.body).toBe('about the demo tenant\n');
});

it('issues a certificate from Pebble on the first handshake for the registered custom domain', async () => {
  const root = readFileSync(join(bed.dir, 'run', 'pebble-root.pem'), 'utf8');
  const san = await new Promise<string>((resolve, reject) => {
    const socket = connect({
      host: '127.0.0.1',
      port: ports.HTTPS,
      servername: 'shop.demo.localhost',
      ca: root,
    });
    socket.once('secureConnect', () => {
      resolve(socket.getPeerX509Certificate()?.subjectAltName ?? '');
      socket.destroy();
    });
    socket.once('error', reject);
  });
  expect(san).toContain('DNS:shop.demo.localhost');
});

it('stops everything on SIGTERM and exits 0', async () => {
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGTERM');
  expect(await exited).toBe(0);
});

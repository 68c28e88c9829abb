/**
 * First-handshake issuance time against a real Pebble (validation sleep off, nonce rejection on):
 * for each fresh allowed domain, the time from TCP connect to a verified TLS session with the
 * issued certificate (Lua miss → issuer API → ACME order → Redis → edge). Then 50 concurrent
 * first handshakes for one domain, counting orders.
 *
 *   npx tsx bench/issuance.ts [rounds=40]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ManagedProcess } from '../lib/local/process.ts';
import { handshake } from '../test/harness/clients.ts';
import { type Bed, startIssuerStack } from '../test/issuer/stack.ts';

const rounds = Number(process.argv[2] ?? 40);
const dir = mkdtempSync(join(tmpdir(), 'bench-issuance-'));
const processes: ManagedProcess[] = [];
const cleanups: (() => unknown)[] = [];
const bed: Bed = {
  dir,
  track: <T extends ManagedProcess>(p: T) => {
    processes.push(p);
    return p;
  },
  onStop: (fn) => {
    cleanups.push(fn);
  },
};

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

async function main(): Promise<void> {
  const stack = await startIssuerStack(bed);
  await stack.edge.seedTenant('acme');
  const verified = async (name: string) => {
    const t0 = performance.now();
    const h = await handshake(stack.edge.https, name, { ca: stack.root });
    const ms = performance.now() - t0;
    h.socket.destroy();
    if (!h.socket.authorized) throw new Error(`${name}: fallback served (${h.socket.authorizationError})`);
    return ms;
  };
  // Warm-up: account lookup, connections, Lua code paths.
  await stack.edge.seedDomain('warmup.example.com', 'acme');
  await verified('warmup.example.com');

  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const name = `bench-${i}.example.com`;
    await stack.edge.seedDomain(name, 'acme');
    times.push(await verified(name));
  }
  times.sort((a, b) => a - b);

  await stack.edge.seedDomain('burst.example.com', 'acme');
  const before = stack.issuer.issuer.orders;
  await Promise.all(Array.from({ length: 50 }, () => verified('burst.example.com')));
  const burstOrders = stack.issuer.issuer.orders - before;

  console.log(
    JSON.stringify(
      {
        rounds,
        firstHandshakeMs: {
          p50: Math.round(pct(times, 50)),
          p95: Math.round(pct(times, 95)),
          min: Math.round(times[0] ?? 0),
          max: Math.round(times[times.length - 1] ?? 0),
        },
        concurrentHandshakes: 50,
        ordersForConcurrentHandshakes: burstOrders,
      },
      null,
      2,
    ),
  );
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const fn of cleanups.reverse()) await Promise.resolve(fn()).catch(() => {});
    await Promise.all(processes.map((p) => p.stop().catch(() => {})));
    if (!process.exitCode) rmSync(dir, { recursive: true, force: true });
  });

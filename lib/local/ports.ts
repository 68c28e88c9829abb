import { createServer } from 'node:net';

/**
 * Free TCP ports for local processes. Ports are taken from a block below the kernel's
 * ephemeral range (32768 and up), one block per vitest worker (or per process elsewhere), so
 * two test files running at once never pick the same port, and no port the kernel hands out
 * on its own (listen(0), outgoing connections) can collide with one picked here.
 */
const FIRST = 20_000;
const BLOCK = 500;
const BLOCKS = 24;

/** vitest workers (and only they) get the low blocks; other processes share the rest by pid. */
const WORKER_BLOCKS = 8;

function blockStart(): number {
  const worker = Number(process.env.VITEST_POOL_ID ?? process.env.VITEST_WORKER_ID ?? 0);
  const index =
    worker > 0 ? worker % WORKER_BLOCKS : WORKER_BLOCKS + (process.pid % (BLOCKS - WORKER_BLOCKS));
  return FIRST + index * BLOCK;
}

const start = blockStart();
let next = 0;

function canListen(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** A free TCP port on the given loopback address (nothing listens on it afterwards). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let i = 0; i < BLOCK; i++) {
    const port = start + (next++ % BLOCK);
    if (await canListen(port, host)) return port;
  }
  throw new Error(`no free port in ${start}-${start + BLOCK - 1} on ${host}`);
}

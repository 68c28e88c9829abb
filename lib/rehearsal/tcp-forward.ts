import { connect, createServer, type Server, type Socket } from 'node:net';

export interface Forwarder {
  readonly host: string;
  readonly port: number;
  /**
   * New connections go to these targets, in turn (an NLB target group's registered targets);
   * connections already open stay where they are, as with the NLB's deregistration delay.
   */
  setTargets(targets: readonly { host: string; port: number }[]): void;
  close(): Promise<void>;
}

/** PROXY protocol v2 header for a TCP over IPv4 connection (what an NLB target group sends). */
export function proxyV2Header(
  src: { address: string; port: number },
  dst: { address: string; port: number },
): Buffer {
  const v4 = (a: string) => {
    const parts = a
      .replace(/^::ffff:/, '')
      .split('.')
      .map(Number);
    return parts.length === 4 && parts.every((n) => n >= 0 && n <= 255) ? parts : [127, 0, 0, 1];
  };
  const h = Buffer.alloc(16 + 12);
  Buffer.from('0d0a0d0a000d0a515549540a', 'hex').copy(h, 0);
  h[12] = 0x21; // version 2, PROXY
  h[13] = 0x11; // AF_INET, STREAM
  h.writeUInt16BE(12, 14);
  Buffer.from(v4(src.address)).copy(h, 16);
  Buffer.from(v4(dst.address)).copy(h, 20);
  h.writeUInt16BE(src.port, 24);
  h.writeUInt16BE(dst.port, 26);
  return h;
}

/**
 * Listens on host:port and forwards each connection to target, optionally prefixed with a PROXY v2
 * header (the NLB's target groups have proxy protocol v2 on). Port 0 picks a free port.
 */
export async function forwardTcp(opts: {
  host: string;
  port: number;
  target: { host: string; port: number };
  proxyProtocol?: boolean;
}): Promise<Forwarder> {
  const sockets = new Set<Socket>();
  let targets: readonly { host: string; port: number }[] = [opts.target];
  let turn = 0;
  const server: Server = createServer((client) => {
    const target = targets[turn++ % targets.length] ?? opts.target;
    const upstream = connect(target.port, target.host);
    sockets.add(client);
    sockets.add(upstream);
    if (opts.proxyProtocol) {
      upstream.write(
        proxyV2Header(
          { address: client.remoteAddress ?? '127.0.0.1', port: client.remotePort ?? 0 },
          { address: client.localAddress ?? '127.0.0.1', port: client.localPort ?? 0 },
        ),
      );
    }
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  return {
    host: opts.host,
    port,
    setTargets: (next) => {
      if (next.length === 0) throw new Error('a forwarder needs at least one target');
      targets = [...next];
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

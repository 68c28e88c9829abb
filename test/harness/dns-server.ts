import { createSocket, type Socket } from 'node:dgram';
import type { AddressInfo } from 'node:net';

/** A DNS server on loopback answering A queries from a table (NXDOMAIN for other names). */
export class TestDnsServer {
  readonly queries: string[] = [];
  private readonly records = new Map<string, string>();
  private socket: Socket | undefined;
  port = 0;

  set(name: string, ipv4: string): void {
    this.records.set(name, ipv4);
  }

  async start(): Promise<number> {
    const socket = createSocket('udp4');
    this.socket = socket;
    socket.on('message', (msg, rinfo) => {
      const labels: string[] = [];
      let i = 12;
      while (i < msg.length && msg[i] !== 0) {
        const len = msg[i] ?? 0;
        labels.push(msg.subarray(i + 1, i + 1 + len).toString('ascii'));
        i += len + 1;
      }
      const question = msg.subarray(12, i + 5);
      const name = labels.join('.').toLowerCase();
      this.queries.push(name);
      const ip = this.records.get(name);
      const header = Buffer.alloc(12);
      msg.copy(header, 0, 0, 2);
      header.writeUInt16BE(ip ? 0x8180 : 0x8183, 2);
      header.writeUInt16BE(1, 4);
      header.writeUInt16BE(ip ? 1 : 0, 6);
      const parts = [header, question];
      if (ip) {
        const answer = Buffer.alloc(16);
        answer.writeUInt16BE(0xc00c, 0); // name: pointer to the question
        answer.writeUInt16BE(1, 2);
        answer.writeUInt16BE(1, 4);
        answer.writeUInt32BE(60, 6);
        answer.writeUInt16BE(4, 10);
        ip.split('.').forEach((o, k) => {
          answer[12 + k] = Number(o);
        });
        parts.push(answer);
      }
      socket.send(Buffer.concat(parts), rinfo.port, rinfo.address);
    });
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    this.port = (socket.address() as AddressInfo).port;
    return this.port;
  }

  async stop(): Promise<void> {
    const socket = this.socket;
    this.socket = undefined;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}

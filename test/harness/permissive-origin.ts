import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * An origin that maps URLs to files the permissive way many origins do: it decodes percent-escapes
 * (twice, like a proxy in front of an app server), treats `\` as `/`, drops `;params` and resolves
 * dot segments. Tenants kept apart only by a path prefix on such an origin are what the edge must
 * protect: every path it sends must stay under the tenant's base after this normalisation.
 */
export class PermissiveOrigin {
  /** Normalised paths of every request received. */
  readonly seen: string[] = [];
  private readonly files = new Map<string, string>();
  private server: Server | undefined;
  port = 0;

  put(path: string, body: string): void {
    this.files.set(path, body);
  }

  static normalise(raw: string): string {
    let path = raw.split('?')[0] ?? '';
    for (let i = 0; i < 2; i++) {
      try {
        path = decodeURIComponent(path);
      } catch {
        break;
      }
    }
    const out: string[] = [];
    for (const seg of path.replaceAll('\\', '/').split('/')) {
      const name = seg.split(';')[0] ?? '';
      if (name === '..') out.pop();
      else if (name !== '.' && name !== '') out.push(name);
    }
    return `/${out.join('/')}`;
  }

  async start(): Promise<number> {
    this.server = createServer((req, res) => {
      const path = PermissiveOrigin.normalise(req.url ?? '/');
      this.seen.push(path);
      const body = this.files.get(path);
      res.writeHead(body === undefined ? 404 : 200, { 'content-type': 'text/plain' });
      res.end(body ?? 'not found\n');
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this.port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

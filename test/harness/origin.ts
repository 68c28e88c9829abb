import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface OriginResponse {
  status?: number;
  headers?: Record<string, string>;
  body?: string;
  delayMs?: number;
}

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

/** A local HTTP origin whose answers each test sets, recording every request it receives. */
export class TestOrigin {
  readonly seen: SeenRequest[] = [];
  private readonly routes = new Map<string, OriginResponse>();
  private server: Server | undefined;
  port = 0;

  set(path: string, response: OriginResponse): void {
    this.routes.set(path, response);
  }

  hits(path: string): number {
    return this.seen.filter((r) => r.url === path).length;
  }

  async start(port = 0): Promise<number> {
    this.server = createServer((req, res) => {
      const url = req.url ?? '/';
      this.seen.push({ method: req.method ?? 'GET', url, headers: req.headers });
      const route = this.routes.get(url.split('?')[0] ?? url) ?? { status: 404, body: 'origin: not found\n' };
      const send = () => {
        const body = route.body ?? `origin body for ${url}\n`;
        // Like S3: a known length (a chunked answer would keep nginx from serving ranges).
        res.writeHead(route.status ?? 200, {
          'content-type': 'text/plain',
          'content-length': String(Buffer.byteLength(body)),
          ...route.headers,
        });
        res.end(body);
      };
      if (route.delayMs) setTimeout(send, route.delayMs);
      else send();
    });
    this.server.keepAliveTimeout = 1000;
    await new Promise<void>((resolve) => this.server?.listen(port, '127.0.0.1', resolve));
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

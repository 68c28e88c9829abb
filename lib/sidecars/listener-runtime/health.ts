import { createServer, type Server } from 'node:http';

/** `/healthz` (the process runs) and `/readyz` (200 once ready, 503 before and while stopping). */
export class HealthServer {
  private server: Server | undefined;
  private readyState = false;
  private detail: Record<string, unknown> = {};

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {}

  setReady(ready: boolean, detail: Record<string, unknown> = {}): void {
    this.readyState = ready;
    this.detail = detail;
  }

  get ready(): boolean {
    return this.readyState;
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const path = req.url?.split('?')[0];
      const [status, body] =
        path === '/healthz'
          ? [200, { ok: true }]
          : path === '/readyz'
            ? [this.readyState ? 200 : 503, { ready: this.readyState, ...this.detail }]
            : [404, { error: 'not found' }];
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(body));
    });
    await new Promise<void>((resolve, reject) => {
      this.server?.once('error', reject);
      this.server?.listen(this.port, this.host, resolve);
    });
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

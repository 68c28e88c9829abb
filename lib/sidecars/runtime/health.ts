import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Serves what is not `/healthz` or `/readyz` (the issuer's API); false means "not mine": 404. */
export type ExtraRoutes = (req: IncomingMessage, res: ServerResponse) => Promise<boolean> | boolean;

/**
 * Every sidecar's health endpoint: `/healthz` is liveness (the process can do its job once its
 * dependencies answer; what container health checks test) and `/readyz` readiness (200 when it can
 * do it now; 503 before and while stopping). The issuer mounts its API on the same server.
 */
export class HealthServer {
  private server: Server | undefined;
  private readyState = false;
  private detail: Record<string, unknown> = {};
  private liveState = true;
  private liveDetail: Record<string, unknown> = {};

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly extra?: ExtraRoutes,
    private readonly onError?: (err: unknown) => void,
  ) {}

  setReady(ready: boolean, detail: Record<string, unknown> = {}): void {
    this.readyState = ready;
    this.detail = detail;
  }

  /** Liveness; true unless a sidecar gates it (the sqs-listener until its first bootstrap). */
  setLive(live: boolean, detail: Record<string, unknown> = {}): void {
    this.liveState = live;
    this.liveDetail = detail;
  }

  get ready(): boolean {
    return this.readyState;
  }

  /** The base URL once started (the port is the bound one when 0 was asked). */
  get url(): string {
    const addr = this.server?.address() as AddressInfo | null | undefined;
    return `http://${this.host}:${addr?.port ?? this.port}`;
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      req.resume();
      this.handle(req, res).catch((err) => {
        this.onError?.(err);
        if (!res.headersSent) send(res, 500, { error: 'internal error' });
        else res.destroy();
      });
    });
    server.keepAliveTimeout = 5000;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, this.host, resolve);
    });
  }

  /** Stops accepting; idle connections close now, busy ones when they finish or at `stop(true)`. */
  async stop(force = true): Promise<void> {
    const server = this.server;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    if (force) server.closeAllConnections();
    await closed;
  }

  /** Closes whatever connections are still open (the end of a graceful stop). */
  closeAll(): void {
    this.server?.closeAllConnections();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = req.url?.split('?')[0];
    if (req.method === 'GET' && path === '/healthz') {
      return send(res, this.liveState ? 200 : 503, { ok: this.liveState, ...this.liveDetail });
    }
    if (req.method === 'GET' && path === '/readyz') {
      return send(res, this.readyState ? 200 : 503, { ready: this.readyState, ...this.detail });
    }
    if (this.extra && (await this.extra(req, res))) return;
    send(res, 404, { error: 'not found' });
  }
}

export function send(res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = type === 'application/json' ? JSON.stringify(body) : String(body);
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

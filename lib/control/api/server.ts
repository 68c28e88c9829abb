import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { ControlPlane } from '../control-plane.ts';
import { handleApi } from './handler.ts';
import { type ApiCredentials, SignatureError, verifySigV4 } from './sigv4.ts';

export interface ApiServerOptions {
  readonly control: ControlPlane;
  readonly credentials: readonly ApiCredentials[];
  /** The region and service clients sign for (API Gateway's are the AWS region and execute-api). */
  readonly region: string;
  readonly service?: string;
  readonly host?: string;
  readonly port: number;
  /** Seconds between re-check sweeps; 0 turns the loop off. */
  readonly recheckSeconds: number;
  readonly log: Logger;
}

export interface ApiServer {
  readonly url: string;
  readonly server: Server;
  /** One sweep now (tests, and the loop). */
  sweep(): Promise<void>;
  close(): Promise<void>;
}

const MAX_BODY = 64 * 1024;

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new Error('body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The control API on loopback, SigV4-verified with a local key pair, and the deployment's one
 * re-check scheduler (run exactly one of these per deployment).
 */
export async function startApiServer(opts: ApiServerOptions): Promise<ApiServer> {
  const log = opts.log;
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    let status = 500;
    let body: unknown;
    try {
      const raw = await readBody(req);
      const query: Record<string, string | string[]> = {};
      for (const [k, v] of url.searchParams) {
        const prev = query[k];
        query[k] = prev === undefined ? v : [...(Array.isArray(prev) ? prev : [prev]), v];
      }
      const isDoc = req.method === 'GET' && url.pathname === '/openapi.json';
      if (!isDoc) {
        await verifySigV4(
          { method: req.method ?? 'GET', path: url.pathname, query, headers: req.headers, body: raw },
          { credentials: opts.credentials, region: opts.region, service: opts.service ?? 'execute-api' },
        );
      }
      ({ status, body } = await handleApi(opts.control, {
        method: req.method ?? 'GET',
        path: url.pathname,
        query,
        body: raw,
      }));
    } catch (err) {
      const e = err as Error;
      status = err instanceof SignatureError ? 403 : 400;
      body = { error: { kind: status === 403 ? 'unauthorized' : 'usage', message: e.message } };
      if (status === 403) log.warn({ method: req.method, path: url.pathname, reason: e.message }, 'refused');
    }
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(`${JSON.stringify(body)}\n`);
  });
  await new Promise<void>((resolve) => server.listen(opts.port, opts.host ?? '127.0.0.1', resolve));
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  let running: Promise<void> | undefined;
  const sweep = () => {
    running ??= opts.control.domains
      .sweep()
      .then(({ checked, attention, errors }) => {
        for (const d of attention) {
          // Marked, never suspended: an operator looks (this line is what the alarm matches).
          log.warn(
            { domain: d.domain, tenant: d.tenant, status: d.status, reason: d.reason },
            'domain needs attention',
          );
        }
        for (const e of errors) log.warn({ err: e }, 'domain re-check failed');
        log.info({ checked, attention: attention.length }, 'domain re-check done');
      })
      .catch((err) => log.error({ err }, 'domain re-check sweep failed'))
      .finally(() => {
        running = undefined;
      });
    return running;
  };
  const timer = opts.recheckSeconds > 0 ? setInterval(sweep, opts.recheckSeconds * 1000) : undefined;
  timer?.unref();
  return {
    url: `http://${host}:${address.port}`,
    server,
    sweep,
    async close() {
      if (timer) clearInterval(timer);
      await running;
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

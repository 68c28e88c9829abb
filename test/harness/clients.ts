import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import {
  type ConnectionOptions,
  type DetailedPeerCertificate,
  type TLSSocket,
  connect as tlsConnect,
} from 'node:tls';

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Reads a whole response into a Reply. */
function collect(res: IncomingMessage): Promise<Reply> {
  return new Promise((resolve, reject) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (c) => {
      body += c;
    });
    res.on('error', reject);
    res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
  });
}

export interface HttpsOptions {
  port: number;
  /** SNI; defaults to the Host. */
  servername?: string;
  host: string;
  path?: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
}

/** One HTTPS request to the edge on loopback with the given SNI and Host, certificate not verified. */
export function httpsGet(opts: HttpsOptions): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port: opts.port,
        path: opts.path ?? '/',
        method: opts.method ?? 'GET',
        servername: opts.servername ?? opts.host,
        headers: { host: opts.host, ...opts.headers },
        rejectUnauthorized: false,
        agent: false,
      },
      (res) => collect(res).then(resolve, reject),
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

export function httpGet(opts: {
  port: number;
  host?: string;
  address?: string;
  path?: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.host) headers.host = opts.host;
    const req = httpRequest(
      {
        host: opts.address ?? '127.0.0.1',
        port: opts.port,
        path: opts.path ?? '/',
        method: opts.method ?? 'GET',
        headers,
        agent: false,
      },
      (res) => collect(res).then(resolve, reject),
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

export interface Handshake {
  socket: TLSSocket;
  /** subjectAltName of the certificate the edge served. */
  san: string;
  protocol: string | null;
  alpn: string | false | null;
  reused: boolean;
  /**
   * The peer's chain (getPeerCertificate(true)), read at the handshake: on a loaded machine the
   * edge may close an idle connection before a later read, which then finds nothing.
   */
  chain: DetailedPeerCertificate;
}

/** A TLS handshake with the given SNI; resolves with what the edge presented. */
export function handshake(
  port: number,
  servername: string | undefined,
  extra: ConnectionOptions = {},
): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port,
      servername,
      rejectUnauthorized: false,
      ...extra,
    });
    socket.once('secureConnect', () => {
      const cert = socket.getPeerX509Certificate();
      resolve({
        socket,
        san: cert?.subjectAltName ?? `(no SAN; subject ${cert?.subject ?? 'none'})`,
        protocol: socket.getProtocol(),
        alpn: socket.alpnProtocol,
        reused: socket.isSessionReused(),
        chain: socket.getPeerCertificate(true),
      });
    });
    socket.once('error', reject);
  });
}

/** The SAN of the certificate served for a name, closing the connection. */
export async function servedSan(port: number, servername: string | undefined): Promise<string> {
  const h = await handshake(port, servername);
  h.socket.destroy();
  return h.san;
}

import { request as httpRequest } from 'node:http';
import { request } from 'node:https';
import { checkServerIdentity, type PeerCertificate, type TLSSocket } from 'node:tls';

export interface EdgeReply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
  /** The presented certificate chain verified against the given CA (and the name). */
  readonly verified: boolean;
  readonly verifyError?: string;
  readonly issuer?: string;
}

/**
 * An HTTPS request through the NLB stand-in, as a browser makes it: SNI and Host set to the
 * name, the chain checked against `ca` (Pebble's root) and the name, not rejected on failure so
 * that the caller sees which certificate was served.
 */
export function edgeGet(opts: {
  port: number;
  host: string;
  path?: string;
  ca: string;
  timeoutMs?: number;
}): Promise<EdgeReply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: opts.port,
        path: opts.path ?? '/',
        servername: opts.host,
        headers: { host: opts.host },
        ca: opts.ca,
        rejectUnauthorized: false,
        agent: false,
        timeout: opts.timeoutMs ?? 15_000,
      },
      (res) => {
        const socket = res.socket as TLSSocket;
        const cert = socket.getPeerCertificate() as PeerCertificate | undefined;
        const nameError = cert ? checkServerIdentity(opts.host, cert) : new Error('no certificate');
        const verifyError = socket.authorized ? nameError?.message : String(socket.authorizationError);
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            verified: verifyError === undefined,
            verifyError,
            issuer: String(cert?.issuer?.CN ?? ''),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET https://${opts.host}${opts.path ?? '/'}: timeout`)));
    req.on('error', reject);
    req.end();
  });
}

/** Plain HTTP through the NLB stand-in (the port-80 listener). */
export function edgeHttpGet(opts: {
  port: number;
  host: string;
  path: string;
}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port: opts.port,
        path: opts.path,
        headers: { host: opts.host },
        agent: false,
        timeout: 10_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

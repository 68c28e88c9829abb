import { createHash, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ServiceRequest, StandInContext } from './context.ts';
import type { NewCallRecord } from './record.ts';

/** An error the stand-in answers in the protocol of the service that raised it. */
export class AwsApiError extends Error {
  override readonly name = 'AwsApiError';
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** The region and service the SDK signed for (SigV4 credential scope), if the request is signed. */
export function signingScope(req: IncomingMessage): { region?: string; service?: string } {
  const auth = req.headers.authorization ?? '';
  const m = /Credential=[^/]+\/\d{8}\/([^/]+)\/([^/]+)\/aws4_request/.exec(auth);
  return m ? { region: m[1], service: m[2] } : {};
}

/** The access key id a SigV4-signed request names (`Credential=<key id>/…`), if it is signed. */
export function accessKeyId(req: IncomingMessage): string | undefined {
  return /Credential=([^/,\s]+)\//.exec(req.headers.authorization ?? '')?.[1];
}

export function requestId(): string {
  return randomUUID();
}

export function md5Hex(text: string): string {
  return createHash('md5').update(text, 'utf8').digest('hex');
}

export function sendJson(res: ServerResponse, status: number, body: unknown, contentType: string): void {
  const text = JSON.stringify(body ?? {});
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': requestId(),
  });
  res.end(text);
}

export function sendXml(res: ServerResponse, status: number, xml: string): void {
  const text = `<?xml version="1.0" encoding="UTF-8"?>\n${xml}`;
  res.writeHead(status, {
    'content-type': 'text/xml',
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': requestId(),
  });
  res.end(text);
}

export function xmlEscape(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** For AWS JSON services: the error shape the SDK's JSON protocols parse (`__type`, `message`). */
export function sendJsonError(res: ServerResponse, err: AwsApiError, contentType: string, extra = {}): void {
  sendJson(res, err.status, { __type: err.code, message: err.message, ...extra }, contentType);
}

/**
 * One call in the AWS JSON protocol: the operation from `X-Amz-Target`, the JSON input, the AWS
 * calls it records (written with their outcome, under the caller's principal), then the answer or
 * the error. `internalCode` names an unexpected failure as the service would; `sendError` replaces
 * the plain JSON error where the service answers differently.
 */
export async function serveJsonCall(
  r: ServiceRequest,
  ctx: StandInContext,
  opts: {
    readonly contentType: string;
    readonly internalCode: string;
    readonly dispatch: (op: string, input: Record<string, unknown>, records: NewCallRecord[]) => unknown;
    readonly sendError?: (e: AwsApiError) => void;
  },
): Promise<void> {
  const target = String(r.req.headers['x-amz-target'] ?? '');
  const op = target.slice(target.indexOf('.') + 1);
  const input = (r.body.length ? JSON.parse(r.body.toString('utf8')) : {}) as Record<string, unknown>;
  const records: NewCallRecord[] = [];
  try {
    const out = await opts.dispatch(op, input, records);
    for (const rec of records) ctx.recorder.write(rec, 'ok', r.principal);
    sendJson(r.res, 200, out, opts.contentType);
  } catch (err) {
    const e = err instanceof AwsApiError ? err : new AwsApiError(opts.internalCode, String(err), 500);
    for (const rec of records) ctx.recorder.write(rec, e.code, r.principal);
    if (opts.sendError) opts.sendError(e);
    else sendJsonError(r.res, e, opts.contentType);
  }
}

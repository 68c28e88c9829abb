import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';

/** A key pair the local API accepts (on AWS, API Gateway's IAM authorization does this). */
export interface ApiCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

export interface SignedRequest {
  readonly method: string;
  /** Path without the query string. */
  readonly path: string;
  readonly query: Readonly<Record<string, string | string[]>>;
  /** Lowercase names. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: string;
}

export class SignatureError extends Error {
  override name = 'SignatureError';
}

/** Node's crypto as the SDK's Checksum: what SignatureV4 hashes and HMACs with (clients sign with it too). */
export class Sha256 {
  private readonly h;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.h = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.h.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
  reset(): void {}
}

const AUTH =
  /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/;
const MAX_SKEW_MS = 5 * 60 * 1000;

/**
 * Verifies AWS Signature Version 4 by signing the request again with @smithy/signature-v4 (the
 * SDK's own signer) over exactly the headers the client signed, and comparing the signatures.
 */
export async function verifySigV4(
  req: SignedRequest,
  opts: { credentials: readonly ApiCredentials[]; region: string; service: string; now?: number },
): Promise<string> {
  const header = first(req.headers.authorization);
  const m = header ? AUTH.exec(header) : null;
  if (!m) throw new SignatureError('missing or malformed SigV4 Authorization header');
  const [, keyId, , region, service, signedHeaders, signature] = m as unknown as string[];
  const creds = opts.credentials.find((c) => c.accessKeyId === keyId);
  if (!creds) throw new SignatureError(`unknown access key ${keyId}`);
  if (region !== opts.region || service !== opts.service)
    throw new SignatureError(`signed for ${region}/${service}, expected ${opts.region}/${opts.service}`);
  const amzDate = first(req.headers['x-amz-date']);
  const when = amzDate
    ? Date.parse(amzDate.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z'))
    : NaN;
  if (!Number.isFinite(when)) throw new SignatureError('missing or malformed X-Amz-Date');
  if (Math.abs((opts.now ?? Date.now()) - when) > MAX_SKEW_MS)
    throw new SignatureError('request time too skewed');
  const names = (signedHeaders as string).split(';');
  if (!names.includes('host')) throw new SignatureError('the host header must be signed');
  const headers: Record<string, string> = {};
  for (const name of names) {
    const v = req.headers[name];
    if (v === undefined) throw new SignatureError(`signed header ${name} is missing`);
    headers[name] = Array.isArray(v) ? v.join(',') : v;
  }
  const signer = new SignatureV4({
    credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey },
    region: opts.region,
    service: opts.service,
    sha256: Sha256,
    applyChecksum: false,
  });
  const host = headers.host as string;
  const signed = await signer.sign(
    {
      method: req.method,
      protocol: 'http:',
      hostname: host.replace(/:\d+$/, ''),
      path: req.path,
      query: req.query as Record<string, string | string[]>,
      headers,
      body: req.body,
    },
    { signingDate: new Date(when), unsignableHeaders: new Set() },
  );
  const expected = /Signature=([0-9a-f]{64})/.exec(String(signed.headers.authorization))?.[1] ?? '';
  const a = Buffer.from(expected);
  const b = Buffer.from(signature as string);
  if (a.length !== b.length || !timingSafeEqual(a, b)) throw new SignatureError('signature does not match');
  return keyId as string;
}

function bytes(d: string | ArrayBuffer | ArrayBufferView): string | Uint8Array {
  if (typeof d === 'string') return d;
  if (d instanceof ArrayBuffer) return new Uint8Array(d);
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

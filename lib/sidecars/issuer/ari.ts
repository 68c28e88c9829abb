import { X509Certificate } from 'node:crypto';
import { httpGet, parseRetryAfter } from './http-get.ts';

/**
 * ACME Renewal Information (RFC 9773): the CA's suggested renewal window for a certificate.
 * The certificate id is base64url(AKI keyIdentifier) "." base64url(serial number DER value bytes).
 */

interface Tlv {
  readonly tag: number;
  readonly start: number;
  readonly end: number;
}

function readTlv(buf: Buffer, offset: number): Tlv {
  const tag = buf[offset];
  let len = buf[offset + 1];
  if (tag === undefined || len === undefined) throw new Error('truncated DER');
  let start = offset + 2;
  if (len & 0x80) {
    const octets = len & 0x7f;
    if (octets < 1 || octets > 4) throw new Error('unsupported DER length');
    len = 0;
    for (let i = 0; i < octets; i++) len = len * 256 + (buf[start + i] ?? 0);
    start += octets;
  }
  if (start + len > buf.length) throw new Error('truncated DER');
  return { tag, start, end: start + len };
}

function children(buf: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let off = parent.start; off < parent.end; ) {
    const t = readTlv(buf, off);
    out.push(t);
    off = t.end;
  }
  return out;
}

const AKI_OID = Buffer.from([0x55, 0x1d, 0x23]); // 2.5.29.35

/** The ARI certificate id of a PEM certificate (the first one of a chain). */
export function ariCertId(certPem: string): string {
  const der = new X509Certificate(certPem).raw;
  const cert = readTlv(der, 0);
  const [tbs] = children(der, cert);
  if (!tbs) throw new Error('certificate has no TBSCertificate');
  const fields = children(der, tbs);
  const serial = fields[0]?.tag === 0xa0 ? fields[1] : fields[0];
  if (serial?.tag !== 0x02) throw new Error('certificate serial not found');
  const extsWrapper = fields.find((f) => f.tag === 0xa3);
  let keyId: Buffer | undefined;
  if (extsWrapper) {
    const [exts] = children(der, extsWrapper);
    for (const ext of exts ? children(der, exts) : []) {
      const parts = children(der, ext);
      const oid = parts[0];
      if (!oid || !der.subarray(oid.start, oid.end).equals(AKI_OID)) continue;
      const value = parts[parts.length - 1];
      if (value?.tag !== 0x04) break;
      const aki = readTlv(der, value.start);
      const id = children(der, aki).find((c) => c.tag === 0x80);
      if (id) keyId = der.subarray(id.start, id.end);
    }
  }
  if (!keyId) throw new Error('certificate has no authority key identifier');
  return `${keyId.toString('base64url')}.${der.subarray(serial.start, serial.end).toString('base64url')}`;
}

export interface RenewalWindow {
  /** Unix ms. */
  readonly start: number;
  readonly end: number;
  readonly explanationUrl?: string;
  /** Unix ms: when to ask again (Retry-After, default six hours). */
  readonly nextCheckAt: number;
}

export class AriClient {
  private readonly directories = new Map<string, { renewalInfo?: string; at: number }>();

  constructor(private readonly opts: { ca?: string; timeoutMs?: number } = {}) {}

  /** The directory's `renewalInfo` URL, or undefined when the CA does not offer ARI. */
  async renewalInfoUrl(directoryUrl: string): Promise<string | undefined> {
    const cached = this.directories.get(directoryUrl);
    if (cached && Date.now() - cached.at < 24 * 3600_000) return cached.renewalInfo;
    const res = await httpGet(directoryUrl, this.opts);
    if (res.status !== 200) throw new Error(`ACME directory ${directoryUrl}: HTTP ${res.status}`);
    const dir = JSON.parse(res.body) as { renewalInfo?: unknown };
    const renewalInfo = typeof dir.renewalInfo === 'string' ? dir.renewalInfo : undefined;
    this.directories.set(directoryUrl, { renewalInfo, at: Date.now() });
    return renewalInfo;
  }

  /** The suggested window for a certificate, or undefined when the CA has no ARI. */
  async renewalWindow(
    directoryUrl: string,
    certPem: string,
    now = Date.now(),
  ): Promise<RenewalWindow | undefined> {
    const base = await this.renewalInfoUrl(directoryUrl);
    if (!base) return undefined;
    const url = `${base.replace(/\/$/, '')}/${ariCertId(certPem)}`;
    const res = await httpGet(url, this.opts);
    if (res.status !== 200) throw new Error(`ARI ${url}: HTTP ${res.status}`);
    const doc = JSON.parse(res.body) as {
      suggestedWindow?: { start?: unknown; end?: unknown };
      explanationURL?: unknown;
    };
    const start = Date.parse(String(doc.suggestedWindow?.start));
    const end = Date.parse(String(doc.suggestedWindow?.end));
    if (Number.isNaN(start) || Number.isNaN(end) || end < start) {
      throw new Error(`ARI ${url}: invalid suggestedWindow`);
    }
    return {
      start,
      end,
      explanationUrl: typeof doc.explanationURL === 'string' ? doc.explanationURL : undefined,
      nextCheckAt: parseRetryAfter(res.headers['retry-after'], now) ?? now + 6 * 3600_000,
    };
  }
}

/** A uniformly random moment in the window (RFC 9773 §4.2); now when the window has begun to pass. */
export function pickRenewalTime(window: { start: number; end: number }, random = Math.random): number {
  return window.start + Math.floor((window.end - window.start) * random());
}

import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { CertRecord } from '../core/redis-format.ts';
import { type SelfSignedOptions, writeSelfSignedCertificate } from '../edge/self-signed.ts';

const run = promisify(execFile);

export interface CertOptions {
  days?: number;
  /** Key algorithm; ECDSA P-256 by default, as the issuer makes them. */
  key?: SelfSignedOptions['key'];
  /**
   * PEM form of the private key: PKCS#8 ("PRIVATE KEY", the default) or SEC1 ("EC PRIVATE KEY"),
   * also SEC1 without its optional public point (`sec1-no-public`).
   */
  keyFormat?: 'pkcs8' | 'sec1' | 'sec1-no-public';
}

/** A self-signed certificate for the given names, as lua-resty-auto-ssl stores it (demo and tests). */
export async function makeCertRecord(
  names: string[],
  daysOrOpts: number | CertOptions = {},
): Promise<CertRecord> {
  const opts = typeof daysOrOpts === 'number' ? { days: daysOrOpts } : daysOrOpts;
  const days = opts.days ?? 30;
  const dir = await mkdtemp(join(tmpdir(), 'edge-cert-'));
  try {
    const key = join(dir, 'key.pem');
    const crt = join(dir, 'crt.pem');
    await writeSelfSignedCertificate({
      certPath: crt,
      keyPath: key,
      commonName: names[0] ?? 'localhost',
      altNames: names.map((n) => `DNS:${n}`),
      days,
      key: opts.key,
    });
    if (opts.keyFormat === 'sec1') await run('openssl', ['ec', '-in', key, '-out', key]);
    if (opts.keyFormat === 'sec1-no-public')
      await run('openssl', ['ec', '-in', key, '-out', key, '-no_public']);
    const cert = await readFile(crt, 'utf8');
    return {
      fullchain_pem: cert,
      cert_pem: cert,
      privkey_pem: await readFile(key, 'utf8'),
      expiry: Math.floor(Date.now() / 1000) + days * 86400,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

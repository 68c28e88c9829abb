import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { CertRecord } from '../core/redis-format.ts';

const run = promisify(execFile);

export interface CertOptions {
  days?: number;
  /** Key algorithm; ECDSA P-256 by default, as the issuer makes them. */
  key?: 'ec-p256' | 'ec-p384' | 'rsa-2048';
  /** PEM form of the private key: PKCS#8 ("PRIVATE KEY", the default) or SEC1 ("EC PRIVATE KEY"). */
  keyFormat?: 'pkcs8' | 'sec1';
}

const KEY_ARGS = {
  'ec-p256': ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  'ec-p384': ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'],
  'rsa-2048': ['-newkey', 'rsa:2048'],
};

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
    await run('openssl', [
      'req',
      '-x509',
      ...KEY_ARGS[opts.key ?? 'ec-p256'],
      '-nodes',
      '-days',
      String(days),
      '-subj',
      `/CN=${names[0]}`,
      '-addext',
      `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`,
      '-keyout',
      key,
      '-out',
      crt,
    ]);
    if (opts.keyFormat === 'sec1') await run('openssl', ['ec', '-in', key, '-out', key]);
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

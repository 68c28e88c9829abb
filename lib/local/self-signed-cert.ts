import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { CertRecord } from '../core/redis-format.ts';

const run = promisify(execFile);

/** A self-signed ECDSA P-256 certificate for the given names, as lua-resty-auto-ssl stores it (demo and tests). */
export async function makeCertRecord(names: string[], days = 30): Promise<CertRecord> {
  const dir = await mkdtemp(join(tmpdir(), 'edge-cert-'));
  try {
    const key = join(dir, 'key.pem');
    const crt = join(dir, 'crt.pem');
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
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

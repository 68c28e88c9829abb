import { execFile } from 'node:child_process';
import { access, chmod } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Makes sure a fallback certificate exists: the one served for names with no certificate of
 * their own. A self-signed ECDSA P-256 certificate is generated on first start when none is
 * configured; its key never leaves the machine. openssl is used because Node has no X.509
 * writer and openssl is present wherever nginx is.
 */
export async function ensureFallbackCertificate(certPath: string, keyPath: string): Promise<boolean> {
  const exists = await Promise.all([access(certPath), access(keyPath)]).then(
    () => true,
    () => false,
  );
  if (exists) return false;
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-days',
    '825',
    '-subj',
    '/CN=edge fallback certificate',
    '-keyout',
    keyPath,
    '-out',
    certPath,
  ]);
  await chmod(keyPath, 0o600);
  return true;
}

import { access } from 'node:fs/promises';
import { writeSelfSignedCertificate } from './self-signed.ts';

/**
 * Makes sure a fallback certificate exists: the one served for names with no certificate of
 * their own. A self-signed ECDSA P-256 certificate is generated on first start when none is
 * configured; its key never leaves the machine.
 */
export async function ensureFallbackCertificate(certPath: string, keyPath: string): Promise<boolean> {
  const exists = await Promise.all([access(certPath), access(keyPath)]).then(
    () => true,
    () => false,
  );
  if (exists) return false;
  await writeSelfSignedCertificate({ certPath, keyPath, commonName: 'edge fallback certificate', days: 825 });
  return true;
}

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { type CertRecord, RedisKeys } from '../../lib/core/redis-format.ts';
import { writeSelfSignedCertificate } from '../../lib/edge/self-signed.ts';

export interface KeyPair {
  readonly certPath: string;
  readonly keyPath: string;
  readonly certPem: string;
  readonly keyPem: string;
}

/** A self-signed ECDSA P-256 certificate and its key, made with openssl (the SAN does not matter). */
export async function makeKeyPair(dir: string, label: string, subjectAltName: string): Promise<KeyPair> {
  const certPath = join(dir, `${label}.crt`);
  const keyPath = join(dir, `${label}.key`);
  await writeSelfSignedCertificate({
    certPath,
    keyPath,
    commonName: label,
    altNames: [`DNS:${subjectAltName}`],
  });
  const [certPem, keyPem] = await Promise.all([readFile(certPath, 'utf8'), readFile(keyPath, 'utf8')]);
  return { certPath, keyPath, certPem, keyPem };
}

export function certRecord(pair: KeyPair): string {
  const record: CertRecord = {
    fullchain_pem: pair.certPem,
    privkey_pem: pair.keyPem,
    cert_pem: pair.certPem,
    expiry: Math.floor(Date.now() / 1000) + 30 * 86400,
  };
  return JSON.stringify(record);
}

export interface NameScheme {
  readonly prefix: string;
  readonly suffix: string;
}

export const CERT_NAMES: NameScheme = { prefix: 'n', suffix: '.certs.example' };

export function certName(i: number, scheme: NameScheme = CERT_NAMES): string {
  return `${scheme.prefix}${i}${scheme.suffix}`;
}

/**
 * Stores names [from, to) in Redis, name i getting pair i mod pairs.length, with pipelines of
 * `batch` SETs. Returns the elapsed milliseconds.
 */
export async function loadCertificates(
  redis: Redis,
  prefix: string,
  pairs: readonly KeyPair[],
  from: number,
  to: number,
  batch = 5000,
): Promise<number> {
  const keys = new RedisKeys(prefix);
  const records = pairs.map(certRecord);
  const started = performance.now();
  for (let start = from; start < to; start += batch) {
    const pipeline = redis.pipeline();
    const end = Math.min(to, start + batch);
    for (let i = start; i < end; i++) {
      pipeline.set(keys.cert(certName(i)), records[i % records.length] as string);
    }
    const results = await pipeline.exec();
    const failed = results?.find(([err]) => err);
    if (failed) throw new Error(`loading certificates failed: ${String(failed[0])}`);
  }
  return performance.now() - started;
}

import { execFile } from 'node:child_process';
import { chmod } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface SelfSignedOptions {
  readonly certPath: string;
  readonly keyPath: string;
  /** Common name of the subject. */
  readonly commonName: string;
  /** subjectAltName entries in openssl's syntax, e.g. ["DNS:a.example", "IP:127.0.0.1"]. */
  readonly altNames?: readonly string[];
  readonly days?: number;
  /** ECDSA P-256 by default. */
  readonly key?: 'ec-p256' | 'ec-p384' | 'rsa-2048';
}

const KEY_ARGS = {
  'ec-p256': ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  'ec-p384': ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'],
  'rsa-2048': ['-newkey', 'rsa:2048'],
} as const;

/**
 * Writes a self-signed certificate and its key (mode 0600) with openssl: Node has no X.509
 * writer, and openssl is present wherever nginx is. For the fallback certificate, the local
 * quick start, Pebble's own endpoint, tests and benchmarks.
 */
export async function writeSelfSignedCertificate(opts: SelfSignedOptions): Promise<void> {
  const args = [
    'req',
    '-x509',
    ...KEY_ARGS[opts.key ?? 'ec-p256'],
    '-nodes',
    '-days',
    String(opts.days ?? 30),
  ];
  args.push('-subj', `/CN=${opts.commonName}`);
  if (opts.altNames?.length) args.push('-addext', `subjectAltName=${opts.altNames.join(',')}`);
  args.push('-keyout', opts.keyPath, '-out', opts.certPath);
  await run('openssl', args);
  await chmod(opts.keyPath, 0o600);
}

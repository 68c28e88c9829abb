import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { EdgeConfig } from '../config/edge-config.ts';
import { autoSslDir } from './nginx-conf.ts';

/**
 * lua-resty-auto-ssl's working directory, prepared before nginx starts (EDGE_TLS_ENGINE=auto-ssl):
 * auto-ssl rewrites `letsencrypt/config` at every start but reads drop-ins from
 * `letsencrypt/conf.d/`, and dehydrated takes its account key from
 * `letsencrypt/accounts/<ca hash>/account_key.pem`. Placing the deployment's key there makes every
 * task use the one ACME account (the native engine's), instead of registering a new one each.
 */

/** The directory name dehydrated gives a CA: base64url of the URL and the newline `echo` adds. */
export function dehydratedCaHash(ca: string): string {
  return Buffer.from(`${ca}\n`).toString('base64url');
}

/** The PEM inside the account secret (a PEM, or JSON with privateKeyPem); undefined for a placeholder. */
export function accountKeyPem(secret: string | undefined): string | undefined {
  if (!secret) return undefined;
  let pem = secret;
  if (secret.trimStart().startsWith('{')) {
    const doc = JSON.parse(secret) as { privateKeyPem?: unknown };
    if (typeof doc.privateKeyPem !== 'string') return undefined;
    pem = doc.privateKeyPem;
  }
  return pem.includes('PRIVATE KEY') ? pem : undefined;
}

/** Single-quoted for bash: dehydrated sources the drop-in. */
function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

export interface AutoSslFiles {
  readonly dropIn: string;
  /** Where the account key went; undefined when none was given (dehydrated registers its own). */
  readonly accountKey?: string;
}

export async function prepareAutoSslDir(config: EdgeConfig, accountSecret?: string): Promise<AutoSslFiles> {
  const { ca, caBundle } = config.tls.autoSsl;
  const base = join(autoSslDir(config), 'letsencrypt');
  const confD = join(base, 'conf.d');
  await mkdir(confD, { recursive: true });
  const lines = ['# Written by the edge at start (lib/edge/auto-ssl-dir.ts).'];
  if (caBundle) lines.push(`CURL_OPTS=${shellQuote(`--cacert ${caBundle}`)}`);
  const dropIn = join(confD, 'edge.sh');
  await writeFile(dropIn, `${lines.join('\n')}\n`, { mode: 0o644 });

  const pem = accountKeyPem(accountSecret);
  if (!pem) return { dropIn };
  const accountDir = join(base, 'accounts', dehydratedCaHash(ca));
  await mkdir(accountDir, { recursive: true, mode: 0o700 });
  const accountKey = join(accountDir, 'account_key.pem');
  await writeFile(accountKey, pem.endsWith('\n') ? pem : `${pem}\n`, { mode: 0o600 });
  return { dropIn, accountKey };
}

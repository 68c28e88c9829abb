import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SecretRef } from './task-definition.ts';

/** A secret the task reads, its value in a local file (ECS would fetch it from Secrets Manager). */
export interface LocalSecret {
  readonly valueFrom: string;
  /** The secret's name, as the issuer asks Secrets Manager for it. */
  readonly name: string;
  readonly file: string;
  readonly value: string;
}

export class SecretsError extends Error {
  override name = 'SecretsError';
}

/** What Secrets Manager's GenerateSecretString makes, for the spec fields the stack uses. */
function generatedString(spec: Record<string, unknown>): string {
  const length = Number(spec.PasswordLength ?? 32);
  let alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  if (spec.ExcludePunctuation !== true) alphabet += '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~';
  const bytes = randomBytes(length);
  return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join('');
}

/** The deployment's ACME account key as the deploy creates it: an ECDSA P-256 key, PKCS#8 PEM. */
export function acmeAccountKeyPem(): string {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** The secret's name from its ARN (Secrets Manager appends `-XXXXXX` to generated ARNs). */
function nameOf(valueFrom: string): string {
  const m = /:secret:(.+)$/.exec(valueFrom);
  return m ? (m[1] as string) : valueFrom;
}

/**
 * Values for every secret the containers name, generated at start into `dir`: the ACME account
 * key (named by the deployment config), and any secret the stack generates itself.
 */
export function makeLocalSecrets(
  refs: readonly SecretRef[],
  opts: { dir: string; acmeAccountSecretName: string },
): Map<string, LocalSecret> {
  const out = new Map<string, LocalSecret>();
  for (const ref of refs) {
    if (out.has(ref.valueFrom)) continue;
    const name = nameOf(ref.valueFrom);
    let value: string;
    if (name === opts.acmeAccountSecretName || name.startsWith(`${opts.acmeAccountSecretName}-`)) {
      value = acmeAccountKeyPem();
    } else if (ref.resource?.properties.GenerateSecretString) {
      value = generatedString(ref.resource.properties.GenerateSecretString as Record<string, unknown>);
    } else {
      throw new SecretsError(
        `secret ${ref.valueFrom} (for ${ref.name}): the rehearsal has no local value for it`,
      );
    }
    const file = join(opts.dir, `secret-${out.size}`);
    writeFileSync(file, value, { mode: 0o600 });
    out.set(ref.valueFrom, { valueFrom: ref.valueFrom, name, file, value });
  }
  return out;
}

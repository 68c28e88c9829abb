import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { IssuerConfigError } from './errors.ts';

/**
 * The deployment's one ACME account key: from a file locally, from Secrets Manager on AWS.
 * Every task signs with the same key, so every task answers HTTP-01 with the same thumbprint.
 */
export interface AccountKeySource {
  load(): Promise<string>;
}

export class FileAccountKey implements AccountKeySource {
  constructor(
    private readonly path: string,
    /** Generate a P-256 key when the file does not exist (local runs only). */
    private readonly create = false,
  ) {}

  async load(): Promise<string> {
    try {
      return checkKey(await readFile(this.path, 'utf8'), this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !this.create) throw err;
    }
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    await writeFile(this.path, pem, { mode: 0o600, flag: 'wx' });
    await chmod(this.path, 0o600);
    return pem;
  }
}

/** The secret holds the PEM as its SecretString (or a JSON object with a `privateKeyPem` field). */
export class SecretsManagerAccountKey implements AccountKeySource {
  constructor(
    private readonly client: SecretsManagerClient,
    private readonly secretId: string,
  ) {}

  async load(): Promise<string> {
    const out = await this.client.send(new GetSecretValueCommand({ SecretId: this.secretId }));
    const raw = out.SecretString;
    if (!raw) throw new IssuerConfigError(`secret ${this.secretId} has no SecretString`);
    let pem = raw;
    if (raw.trimStart().startsWith('{')) {
      const doc = JSON.parse(raw) as { privateKeyPem?: unknown };
      if (typeof doc.privateKeyPem !== 'string') {
        throw new IssuerConfigError(`secret ${this.secretId} is JSON without a "privateKeyPem" string`);
      }
      pem = doc.privateKeyPem;
    }
    return checkKey(pem, `secret ${this.secretId}`);
  }
}

function checkKey(pem: string, where: string): string {
  if (!pem.includes('PRIVATE KEY')) throw new IssuerConfigError(`${where} does not hold a PEM private key`);
  try {
    createPublicKey(pem);
  } catch {
    throw new IssuerConfigError(`${where} holds a private key that cannot be parsed`);
  }
  return pem;
}

/** RFC 7638 JWK thumbprint (base64url SHA-256): what the edge appends to HTTP-01 tokens. */
export function jwkThumbprint(privateKeyPem: string): string {
  const jwk = createPublicKey(privateKeyPem).export({ format: 'jwk' });
  const members =
    jwk.kty === 'EC'
      ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }
      : jwk.kty === 'RSA'
        ? { e: jwk.e, kty: jwk.kty, n: jwk.n }
        : undefined;
  if (!members) throw new IssuerConfigError(`unsupported account key type ${String(jwk.kty)}`);
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

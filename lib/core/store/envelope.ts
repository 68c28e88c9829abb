import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { DataKeyProvider } from './data-keys.ts';
import { DecryptError } from './errors.ts';

/** How a private key is kept in the table. Every field is base64 except alg and keyId. */
export interface Envelope {
  readonly alg: 'AES-256-GCM';
  readonly keyId: string;
  readonly dataKey: string;
  readonly iv: string;
  readonly tag: string;
  readonly ciphertext: string;
}

/**
 * Envelope encryption of private keys. Each secret gets its own data key; the domain is both the
 * KMS encryption context and the GCM additional data, so an envelope copied to another domain's
 * item does not decrypt. Unwrapped data keys are cached (bounded) because a bootstrap reads every
 * certificate and KMS Decrypt calls cost time and money.
 */
export class EnvelopeCipher {
  private readonly unwrapped = new Map<string, Promise<Buffer>>();

  constructor(
    private readonly keys: DataKeyProvider,
    private readonly cacheSize = 20_000,
  ) {}

  async seal(plaintext: string, domain: string): Promise<Envelope> {
    const context = { domain };
    const key = await this.keys.generate(context);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key.plaintext, iv);
    cipher.setAAD(Buffer.from(domain));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const env: Envelope = {
      alg: 'AES-256-GCM',
      keyId: key.keyId,
      dataKey: key.wrapped.toString('base64'),
      iv: iv.toString('base64'),
      tag: cipher.getAuthTag().toString('base64'),
      ciphertext: ciphertext.toString('base64'),
    };
    key.plaintext.fill(0);
    return env;
  }

  async open(env: Envelope, domain: string): Promise<string> {
    if (env.alg !== 'AES-256-GCM') throw new DecryptError(`unknown envelope algorithm ${String(env.alg)}`);
    const dataKey = await this.dataKey(env, domain);
    try {
      const decipher = createDecipheriv('aes-256-gcm', dataKey, Buffer.from(env.iv, 'base64'));
      decipher.setAuthTag(Buffer.from(env.tag, 'base64'));
      decipher.setAAD(Buffer.from(domain));
      return Buffer.concat([
        decipher.update(Buffer.from(env.ciphertext, 'base64')),
        decipher.final(),
      ]).toString('utf8');
    } catch (err) {
      throw new DecryptError(`failed to decrypt the private key of ${domain}: ${(err as Error).message}`);
    }
  }

  private dataKey(env: Envelope, domain: string): Promise<Buffer> {
    const cacheKey = `${domain}\n${env.dataKey}`;
    let p = this.unwrapped.get(cacheKey);
    if (!p) {
      p = this.keys.unwrap(Buffer.from(env.dataKey, 'base64'), env.keyId, { domain });
      p.catch(() => this.unwrapped.delete(cacheKey));
      if (this.unwrapped.size >= this.cacheSize) {
        const oldest = this.unwrapped.keys().next().value;
        if (oldest !== undefined) this.unwrapped.delete(oldest);
      }
      this.unwrapped.set(cacheKey, p);
    }
    return p;
  }
}

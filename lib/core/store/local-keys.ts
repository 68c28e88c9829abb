import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { DataKey, DataKeyProvider } from './data-keys.ts';
import { DecryptError } from './errors.ts';

const KEY_BYTES = 32;

function contextAad(context: Record<string, string>): Buffer {
  const sorted = Object.keys(context)
    .sort()
    .map((k) => [k, context[k]]);
  return Buffer.from(JSON.stringify(sorted));
}

/**
 * Wraps data keys with a 256-bit master key kept in a file (created 0600 when absent): the local
 * stand-in for KMS. Wrapped form: iv(12) | tag(16) | ciphertext(32), AES-256-GCM with the context as AAD.
 */
export class LocalKeyFileProvider implements DataKeyProvider {
  readonly kind = 'local';
  private constructor(
    private readonly master: Buffer,
    readonly keyId: string,
  ) {}

  static async open(path: string): Promise<LocalKeyFileProvider> {
    let master: Buffer;
    try {
      master = Buffer.from((await readFile(path, 'utf8')).trim(), 'base64');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      master = randomBytes(KEY_BYTES);
      await mkdir(dirname(path), { recursive: true });
      // 'wx' fails if another process created it first; then read theirs.
      await writeFile(path, `${master.toString('base64')}\n`, { flag: 'wx', mode: 0o600 }).catch(
        async (e: NodeJS.ErrnoException) => {
          if (e.code !== 'EEXIST') throw e;
          master = Buffer.from((await readFile(path, 'utf8')).trim(), 'base64');
        },
      );
      await chmod(path, 0o600).catch(() => {});
    }
    if (master.length !== KEY_BYTES) throw new Error(`local key file ${path} must hold 32 bytes in base64`);
    const keyId = `local:${createHash('sha256').update(master).digest('hex').slice(0, 16)}`;
    return new LocalKeyFileProvider(master, keyId);
  }

  async generate(context: Record<string, string>): Promise<DataKey> {
    const plaintext = randomBytes(KEY_BYTES);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.master, iv);
    cipher.setAAD(contextAad(context));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return { plaintext, wrapped: Buffer.concat([iv, cipher.getAuthTag(), body]), keyId: this.keyId };
  }

  async unwrap(wrapped: Buffer, keyId: string, context: Record<string, string>): Promise<Buffer> {
    if (keyId !== this.keyId)
      throw new DecryptError(`data key was wrapped by ${keyId}, this file is ${this.keyId}`);
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.master, wrapped.subarray(0, 12));
      decipher.setAuthTag(wrapped.subarray(12, 28));
      decipher.setAAD(contextAad(context));
      return Buffer.concat([decipher.update(wrapped.subarray(28)), decipher.final()]);
    } catch (err) {
      throw new DecryptError(`failed to unwrap data key: ${(err as Error).message}`);
    }
  }
}

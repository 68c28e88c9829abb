import { DecryptCommand, GenerateDataKeyCommand, type KMSClient } from '@aws-sdk/client-kms';
import type { DataKey, DataKeyProvider } from './data-keys.ts';
import { DecryptError } from './errors.ts';

/** Data keys from AWS KMS: GenerateDataKey (AES_256) to encrypt, Decrypt to read; the context binds both. */
export class KmsDataKeyProvider implements DataKeyProvider {
  readonly kind = 'kms';
  constructor(
    private readonly kms: KMSClient,
    private readonly keyId: string,
  ) {}

  async generate(context: Record<string, string>): Promise<DataKey> {
    const out = await this.kms.send(
      new GenerateDataKeyCommand({ KeyId: this.keyId, KeySpec: 'AES_256', EncryptionContext: context }),
    );
    if (!out.Plaintext || !out.CiphertextBlob) throw new Error('KMS GenerateDataKey returned no key');
    return {
      plaintext: Buffer.from(out.Plaintext),
      wrapped: Buffer.from(out.CiphertextBlob),
      keyId: out.KeyId ?? this.keyId,
    };
  }

  async unwrap(wrapped: Buffer, keyId: string, context: Record<string, string>): Promise<Buffer> {
    try {
      const out = await this.kms.send(
        new DecryptCommand({
          CiphertextBlob: wrapped,
          KeyId: decryptKeyId(keyId),
          EncryptionContext: context,
        }),
      );
      if (!out.Plaintext) throw new Error('no plaintext');
      return Buffer.from(out.Plaintext);
    } catch (err) {
      throw new DecryptError(`KMS Decrypt failed: ${(err as Error).message}`);
    }
  }
}

/**
 * The KeyId to decrypt with, in the client's own region. GenerateDataKey records the full ARN of
 * the key that wrapped the data key (`arn:…:kms:<region where it was sealed>:…:key/mrk-…`); a
 * multi-region key has the same `mrk-` id and key material in every region, so the bare id
 * names this region's replica and the data key opens without a call to the sealing region.
 * Single-region keys keep the stored id (KMS refuses a key of another region anyway).
 */
export function decryptKeyId(storedKeyId: string): string {
  const mrk = /:key\/(mrk-[0-9a-f]+)$/.exec(storedKeyId);
  return mrk?.[1] ?? storedKeyId;
}

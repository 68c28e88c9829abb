/**
 * Where data keys come from: KMS on AWS, a local key file elsewhere. A data key is a fresh
 * AES-256 key returned in plaintext (used once, in memory) and wrapped (stored beside the data).
 */
export interface DataKey {
  readonly plaintext: Buffer;
  readonly wrapped: Buffer;
  /** Identifies the wrapping key (KMS key ARN, or the local key file's fingerprint). */
  readonly keyId: string;
}

export interface DataKeyProvider {
  readonly kind: 'kms' | 'local';
  generate(context: Record<string, string>): Promise<DataKey>;
  unwrap(wrapped: Buffer, keyId: string, context: Record<string, string>): Promise<Buffer>;
}

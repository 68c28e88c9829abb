/** An envelope that does not decrypt: wrong key, tampered ciphertext, or a different domain. */
export class DecryptError extends Error {
  override name = 'DecryptError';
}

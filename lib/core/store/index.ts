export type { DataKey, DataKeyProvider } from './data-keys.ts';
export { type Envelope, EnvelopeCipher } from './envelope.ts';
export { DecryptError } from './errors.ts';
export * from './items.ts';
export { KmsDataKeyProvider } from './kms-keys.ts';
export { LocalKeyFileProvider } from './local-keys.ts';
export { purgeField } from './purge-fields.ts';
export { type ScanOptions, type ScanProgress, Store, type StoreOptions, type WriteResult } from './store.ts';

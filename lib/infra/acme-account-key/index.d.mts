import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

export function holdsValidKey(secretString: unknown): boolean;
export function newAccountKeyPem(): string;
export function ensureAccountKey(client: SecretsManagerClient, secretId: string): Promise<'kept' | 'created'>;
export function handler(event: Record<string, unknown>): Promise<void>;

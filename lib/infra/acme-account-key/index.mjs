// Deploy-time custom resource (Custom::AcmeAccountKey): makes sure the ACME account secret holds a
// private key the issuer accepts, creating one only when it does not. Never overwrites a valid
// key, so a redeploy (or a replaced stack with a retained secret) keeps the ACME account.
// Runs on the Lambda Node.js runtime, which provides the AWS SDK v3; no other dependency.
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import {
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';

/**
 * The issuer's own test (lib/sidecars/issuer/account-key.ts): a PEM private key as the whole
 * SecretString, or a JSON object whose `privateKeyPem` is one, that Node can parse.
 */
export function holdsValidKey(secretString) {
  if (typeof secretString !== 'string') return false;
  let pem = secretString;
  if (secretString.trimStart().startsWith('{')) {
    try {
      pem = JSON.parse(secretString).privateKeyPem;
    } catch {
      return false;
    }
    if (typeof pem !== 'string') return false;
  }
  if (!pem.includes('PRIVATE KEY')) return false;
  try {
    createPublicKey(pem);
    return true;
  } catch {
    return false;
  }
}

/** ECDSA P-256 in PKCS#8 PEM: what the issuer generates for local runs too. */
export function newAccountKeyPem() {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** Returns 'kept' when the secret already holds a valid key, 'created' when one was stored. */
export async function ensureAccountKey(client, secretId) {
  let current;
  try {
    current = (await client.send(new GetSecretValueCommand({ SecretId: secretId }))).SecretString;
  } catch (err) {
    // A secret without a current version has nothing to keep.
    if (err?.name !== 'ResourceNotFoundException') throw err;
  }
  if (holdsValidKey(current)) return 'kept';
  await client.send(new PutSecretValueCommand({ SecretId: secretId, SecretString: newAccountKeyPem() }));
  return 'created';
}

async function respond(event, status, reason, data) {
  const body = JSON.stringify({
    Status: status,
    Reason: reason,
    PhysicalResourceId: event.PhysicalResourceId ?? `acme-account-key-${event.LogicalResourceId}`,
    StackId: event.StackId,
    RequestId: event.RequestId,
    LogicalResourceId: event.LogicalResourceId,
    NoEcho: true,
    Data: data,
  });
  const res = await fetch(event.ResponseURL, {
    method: 'PUT',
    headers: { 'content-type': '', 'content-length': String(Buffer.byteLength(body)) },
    body,
  });
  if (!res.ok) throw new Error(`CloudFormation refused the response: HTTP ${res.status}`);
}

export async function handler(event) {
  let status = 'SUCCESS';
  let reason = 'ok';
  const data = {};
  try {
    // Delete leaves the key alone: the secret's own removal policy decides its fate.
    if (event.RequestType !== 'Delete') {
      data.Outcome = await ensureAccountKey(new SecretsManagerClient({}), event.ResourceProperties.SecretId);
      console.log(JSON.stringify({ event: 'acme_account_key', outcome: data.Outcome }));
    }
  } catch (err) {
    status = 'FAILED';
    // The message names the call that failed, never the key.
    reason = `failed to ensure the ACME account key: ${err?.name ?? 'Error'}: ${err?.message ?? String(err)}`;
    console.log(JSON.stringify({ event: 'acme_account_key_failed', reason }));
  }
  await respond(event, status, reason, data);
}

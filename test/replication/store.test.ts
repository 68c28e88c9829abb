import { statSync } from 'node:fs';
import { join } from 'node:path';
import { type DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { DecryptCommand, GenerateDataKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeAll, describe, expect, it } from 'vitest';
import { EnvelopeCipher } from '../../lib/core/store/envelope.ts';
import { decryptKeyId, KmsDataKeyProvider } from '../../lib/core/store/kms-keys.ts';
import { LocalKeyFileProvider } from '../../lib/core/store/local-keys.ts';
import { Store } from '../../lib/core/store/store.ts';
import { ensureTable } from '../../lib/core/table.ts';
import { startDynalite } from '../../lib/local/dynalite.ts';
import { freePort } from '../../lib/local/ports.ts';
import { makeCertRecord } from '../../lib/local/self-signed-cert.ts';
import { TestBed } from '../harness/testbed.ts';

const bed = new TestBed('store');
let store: Store;
let raw: DynamoDBClient;

beforeAll(async () => {
  const dynalite = await startDynalite({ port: await freePort(), dir: bed.dir });
  bed.track(dynalite.process);
  raw = dynalite.client();
  bed.onStop(() => raw.destroy());
  await ensureTable(raw, 'store-test');
  store = new Store({
    client: raw,
    tableName: 'store-test',
    keys: await LocalKeyFileProvider.open(join(bed.dir, 'k')),
  });
});

describe('store (dynalite)', () => {
  it('keeps the private key envelope-encrypted and reads the record back byte for byte', async () => {
    const record = await makeCertRecord(['enc.example.com']);
    expect(await store.putCert('enc.example.com', record)).toBe('written');
    const item = await raw.send(
      new GetItemCommand({
        TableName: 'store-test',
        Key: { PK: { S: 'DOMAIN#enc.example.com' }, SK: { S: 'CERT' } },
      }),
    );
    expect(JSON.stringify(item.Item)).not.toContain('PRIVATE KEY');
    expect(item.Item?.key?.M?.alg?.S).toBe('AES-256-GCM');
    expect(await store.getCert('enc.example.com')).toEqual({ state: 'live', version: record.expiry, record });
    expect(statSync(join(bed.dir, 'k')).mode & 0o777).toBe(0o600);
  });

  it('only moves forward: an older certificate is stale, a revocation is a tombstone an equal version cannot undo', async () => {
    const newer = await makeCertRecord(['ver.example.com'], 60);
    const older = { ...newer, expiry: newer.expiry - 86400 };
    expect(await store.putCert('ver.example.com', newer)).toBe('written');
    expect(await store.putCert('ver.example.com', older)).toBe('stale');
    expect(await store.revokeCert('ver.example.com', newer.expiry)).toBe('written');
    expect(await store.putCert('ver.example.com', newer)).toBe('stale');
    expect(await store.getCert('ver.example.com')).toEqual({ state: 'revoked', version: newer.expiry });
  });

  it('versions tenants and domains, with tombstones, and hands out increasing versions', async () => {
    const v1 = await store.nextVersion('domain:d.example.com');
    const v2 = await store.nextVersion('domain:d.example.com');
    expect(v2).toBe(v1 + 1);
    expect(await store.putDomain('d.example.com', 'acme', v2)).toBe('written');
    expect(await store.removeDomain('d.example.com', v2)).toBe('written');
    expect(await store.putDomain('d.example.com', 'acme', v1)).toBe('stale');
    expect(await store.getDomain('d.example.com')).toMatchObject({ deleted: true, version: v2 });
    expect(await store.putTenant('acme', { type: 'http', url: 'http://127.0.0.1:1' }, 3)).toBe('written');
    expect(await store.getTenant('acme')).toMatchObject({ id: 'acme', version: 3 });
  });

  it('keeps purge generations per field, never going back', async () => {
    expect(await store.recordPurge('acme', 't', 200)).toBe('written');
    expect(await store.recordPurge('acme', 't', 100)).toBe('stale');
    expect(await store.recordPurge('acme', 'u:www.acme.test/a', 150)).toBe('written');
    expect(await store.getPurges('acme')).toEqual({ t: 200, 'u:www.acme.test/a': 150 });
  });

  it('scans the whole table in parallel pages', async () => {
    const record = await makeCertRecord(['scan.example.com']);
    for (let i = 0; i < 30; i++) await store.putCert(`s${i}.example.com`, record);
    const seen = new Set<string>();
    const result = await store.scan({
      segments: 3,
      pageSize: 7,
      onPage: async (items) => {
        for (const it of items) if (it.kind === 'cert') seen.add(it.domain);
      },
    });
    expect(result.pages).toBeGreaterThan(3);
    for (let i = 0; i < 30; i++) expect(seen.has(`s${i}.example.com`)).toBe(true);
  });
});

describe('KMS data keys (aws-sdk-client-mock)', () => {
  it('asks KMS for an AES-256 data key bound to the domain, and decrypts it once for many reads', async () => {
    const kms = mockClient(KMSClient);
    const plaintext = Buffer.alloc(32, 7);
    kms.on(GenerateDataKeyCommand).resolves({
      Plaintext: new Uint8Array(plaintext),
      CiphertextBlob: new Uint8Array(Buffer.from('wrapped-key')),
      KeyId: 'arn:aws:kms:eu-west-1:111122223333:key/k1',
    });
    kms.on(DecryptCommand).resolves({ Plaintext: new Uint8Array(plaintext) });
    const cipher = new EnvelopeCipher(
      new KmsDataKeyProvider(new KMSClient({ region: 'eu-west-1' }), 'alias/edge'),
    );
    const payload = 'a sealed test payload (no real key)';
    const env = await cipher.seal(payload, 'kms.example.com');
    expect(await cipher.open(env, 'kms.example.com')).toBe(payload);
    expect(await cipher.open(env, 'kms.example.com')).toBe(payload);
    expect(kms.commandCalls(GenerateDataKeyCommand).map((c) => c.args[0].input)).toEqual([
      { KeyId: 'alias/edge', KeySpec: 'AES_256', EncryptionContext: { domain: 'kms.example.com' } },
    ]);
    expect(kms.commandCalls(DecryptCommand).map((c) => c.args[0].input)).toEqual([
      {
        CiphertextBlob: Buffer.from('wrapped-key'),
        KeyId: 'arn:aws:kms:eu-west-1:111122223333:key/k1',
        EncryptionContext: { domain: 'kms.example.com' },
      },
    ]);
    await expect(cipher.open(env, 'other.example.com')).rejects.toThrow(/decrypt/);
    kms.restore();
  });

  it("opens a data key sealed under a multi-region key in another region with this region's replica", async () => {
    const kms = mockClient(KMSClient);
    const plaintext = Buffer.alloc(32, 9);
    kms.on(GenerateDataKeyCommand).resolves({
      Plaintext: new Uint8Array(plaintext),
      CiphertextBlob: new Uint8Array(Buffer.from('wrapped-mrk')),
      KeyId: 'arn:aws:kms:eu-west-1:111122223333:key/mrk-0123456789abcdef0123456789abcdef',
    });
    kms.on(DecryptCommand).resolves({ Plaintext: new Uint8Array(plaintext) });
    const sealer = new EnvelopeCipher(
      new KmsDataKeyProvider(new KMSClient({ region: 'eu-west-1' }), 'alias/edge-private-keys'),
    );
    const opener = new EnvelopeCipher(
      new KmsDataKeyProvider(new KMSClient({ region: 'us-east-1' }), 'alias/edge-private-keys'),
    );
    const env = await sealer.seal('a sealed test payload', 'mrk.example.com');
    expect(await opener.open(env, 'mrk.example.com')).toBe('a sealed test payload');
    expect(kms.commandCalls(DecryptCommand).map((c) => c.args[0].input.KeyId)).toEqual([
      'mrk-0123456789abcdef0123456789abcdef',
    ]);
    kms.restore();
  });

  it('keeps the stored key id of a single-region key', () => {
    expect(decryptKeyId('arn:aws:kms:eu-west-1:111122223333:key/k1')).toBe(
      'arn:aws:kms:eu-west-1:111122223333:key/k1',
    );
    expect(decryptKeyId('alias/edge')).toBe('alias/edge');
  });
});

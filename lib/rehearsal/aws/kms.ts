import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { ServiceHandler, ServiceRequest, StandInContext } from './context.ts';
import { AwsApiError, serveJsonCall } from './http.ts';
import type { NewCallRecord } from './record.ts';

const CONTENT_TYPE = 'application/x-amz-json-1.1';
const MAGIC = Buffer.from('RKMS');

interface Key {
  readonly id: string;
  readonly arn: string;
  readonly region: string;
  readonly aliases: Set<string>;
}

export interface KmsStandInOptions {
  /**
   * Aliases name one multi-region key (`mrk-…` id, the same material in every region, as a
   * primary with replicas); default false: one single-region key per region and alias.
   */
  readonly multiRegion?: boolean;
  /**
   * Aliases CloudFormation created: alias name or ARN → key id or ARN. Calls that name the key by
   * its ARN then still carry `kms:ResourceAliases`, as on AWS.
   */
  readonly aliases?: Readonly<Record<string, string>>;
}

/**
 * KMS over AWS JSON 1.1 (`TrentService.<Operation>`): a locally generated AES-256 master key per
 * key, envelope encryption bound to the encryption context (AES-GCM with the context as AAD).
 * Keys named by an alias or id the stand-in has not seen are created on first use, as
 * CloudFormation would have created them.
 */
export class KmsStandIn implements ServiceHandler {
  private readonly keys = new Map<string, Key>();
  private readonly aliasTargets = new Map<string, string>();
  private readonly material = new Map<string, Buffer>();

  constructor(
    private readonly ctx: StandInContext,
    private readonly opts: KmsStandInOptions = {},
  ) {
    for (const [alias, target] of Object.entries(opts.aliases ?? {})) {
      const a = /^arn:[^:]+:kms:([^:]+):\d{12}:(alias\/.+)$/.exec(alias);
      const t = /^arn:[^:]+:kms:([^:]+):\d{12}:key\/(.+)$/.exec(target);
      const region = a?.[1] ?? t?.[1] ?? ctx.defaultRegion;
      this.aliasTargets.set(`${region}/${a?.[2] ?? alias}`, t?.[2] ?? target);
    }
  }

  handle(r: ServiceRequest): Promise<void> {
    return serveJsonCall(r, this.ctx, {
      contentType: CONTENT_TYPE,
      internalCode: 'KMSInternalException',
      dispatch: (op, input, records) => this.dispatch(op, input, r.region, records),
    });
  }

  /** The record of a call another service makes with the caller's permissions (`kms:ViaService`). */
  viaServiceRecord(action: string, keyId: string, viaService: string, region: string): NewCallRecord {
    const { key, alias } = this.resolve(keyId, region);
    return this.record(action, key, alias, region, {}, { 'kms:ViaService': viaService });
  }

  /** Resolves a key id, key ARN, alias name or alias ARN in `region`, creating the key on first use. */
  resolve(keyId: string, region: string): { key: Key; alias?: string } {
    const arnMatch = /^arn:([^:]+):kms:([^:]+):(\d{12}):(key|alias)\/(.+)$/.exec(keyId);
    const keyRegion = arnMatch ? (arnMatch[2] as string) : region;
    if (arnMatch && arnMatch[3] !== this.ctx.account) {
      throw new AwsApiError('NotFoundException', `key ${keyId} belongs to another account`);
    }
    const aliasName =
      arnMatch?.[4] === 'alias' ? `alias/${arnMatch[5]}` : keyId.startsWith('alias/') ? keyId : undefined;
    if (aliasName) {
      const aliasKey = `${keyRegion}/${aliasName}`;
      let id = this.aliasTargets.get(aliasKey);
      if (!id) {
        id = this.opts.multiRegion
          ? `mrk-${createHash('sha256').update(aliasName).digest('hex').slice(0, 32)}`
          : uuidFrom(`${keyRegion}/${aliasName}`);
        this.aliasTargets.set(aliasKey, id);
      }
      const key = this.key(keyRegion, id);
      key.aliases.add(aliasName);
      return { key, alias: aliasName };
    }
    const id = arnMatch ? (arnMatch[5] as string) : keyId;
    if (!id) throw new AwsApiError('ValidationException', 'KeyId is required');
    return { key: this.key(keyRegion, id) };
  }

  private key(region: string, id: string): Key {
    const arn = `arn:${this.ctx.partition}:kms:${region}:${this.ctx.account}:key/${id}`;
    let key = this.keys.get(arn);
    if (!key) {
      key = { id, arn, region, aliases: new Set() };
      this.keys.set(arn, key);
      // Replicas of a multi-region key share its material; every other key has its own.
      const materialId = id.startsWith('mrk-') ? id : arn;
      if (!this.material.has(materialId)) this.material.set(materialId, randomBytes(32));
      // Aliases pointing at this key in its region (a key first named by id may have one).
      for (const [aliasKey, target] of this.aliasTargets) {
        if (target === id && aliasKey.startsWith(`${region}/`))
          key.aliases.add(aliasKey.slice(region.length + 1));
      }
    }
    return key;
  }

  private materialOf(key: Key): Buffer {
    return this.material.get(key.id.startsWith('mrk-') ? key.id : key.arn) as Buffer;
  }

  private record(
    action: string,
    key: Key,
    alias: string | undefined,
    region: string,
    encryptionContext: Record<string, string>,
    extra: Record<string, string> = {},
  ): NewCallRecord {
    const ctxKeys = Object.keys(encryptionContext);
    return {
      service: 'kms',
      action: `kms:${action}`,
      resource: key.arn,
      region,
      context: {
        'kms:CallerAccount': this.ctx.account,
        ...(key.aliases.size ? { 'kms:ResourceAliases': [...key.aliases] } : {}),
        ...(alias ? { 'kms:RequestAlias': alias } : {}),
        ...(ctxKeys.length ? { 'kms:EncryptionContextKeys': ctxKeys } : {}),
        ...Object.fromEntries(
          ctxKeys.map((k) => [`kms:EncryptionContext:${k}`, encryptionContext[k] as string]),
        ),
        ...extra,
      },
    };
  }

  private dispatch(
    op: string,
    input: Record<string, unknown>,
    region: string,
    records: NewCallRecord[],
  ): unknown {
    const context = (input.EncryptionContext ?? {}) as Record<string, string>;
    switch (op) {
      case 'GenerateDataKey':
      case 'GenerateDataKeyWithoutPlaintext': {
        const { key, alias } = this.resolve(String(input.KeyId ?? ''), region);
        records.push(this.record(op, key, alias, region, context));
        const bytes = input.NumberOfBytes
          ? Number(input.NumberOfBytes)
          : input.KeySpec === 'AES_128'
            ? 16
            : 32;
        const plaintext = randomBytes(bytes);
        const blob = this.seal(key, plaintext, context);
        return {
          KeyId: key.arn,
          CiphertextBlob: blob.toString('base64'),
          ...(op === 'GenerateDataKey' ? { Plaintext: plaintext.toString('base64') } : {}),
        };
      }
      case 'Encrypt': {
        const { key, alias } = this.resolve(String(input.KeyId ?? ''), region);
        records.push(this.record(op, key, alias, region, context));
        const blob = this.seal(key, Buffer.from(String(input.Plaintext ?? ''), 'base64'), context);
        return {
          KeyId: key.arn,
          CiphertextBlob: blob.toString('base64'),
          EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
        };
      }
      case 'Decrypt': {
        const blob = Buffer.from(String(input.CiphertextBlob ?? ''), 'base64');
        const parsed = parseBlob(blob);
        const blobKeyId = parsed?.keyArn.slice(parsed.keyArn.indexOf(':key/') + 5);
        const named = input.KeyId ? this.resolve(String(input.KeyId), region) : undefined;
        const key = named?.key ?? (blobKeyId ? this.key(region, blobKeyId) : undefined);
        if (key) records.push(this.record(op, key, named?.alias, region, context));
        if (!parsed || !key)
          throw new AwsApiError('InvalidCiphertextException', 'the ciphertext is not one this KMS made');
        if (blobKeyId !== key.id)
          throw new AwsApiError('IncorrectKeyException', `the ciphertext was not encrypted under ${key.arn}`);
        if (parsed.keyArn !== key.arn && !key.id.startsWith('mrk-')) {
          throw new AwsApiError('InvalidCiphertextException', `the key ${parsed.keyArn} is not in ${region}`);
        }
        const plaintext = this.open(key, parsed, context);
        return {
          KeyId: key.arn,
          Plaintext: plaintext.toString('base64'),
          EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
        };
      }
      case 'DescribeKey': {
        const { key, alias } = this.resolve(String(input.KeyId ?? ''), region);
        records.push(this.record(op, key, alias, region, {}));
        return {
          KeyMetadata: {
            AWSAccountId: this.ctx.account,
            KeyId: key.id,
            Arn: key.arn,
            Enabled: true,
            KeyState: 'Enabled',
            KeyUsage: 'ENCRYPT_DECRYPT',
            KeySpec: 'SYMMETRIC_DEFAULT',
            KeyManager: 'CUSTOMER',
            Origin: 'AWS_KMS',
            MultiRegion: key.id.startsWith('mrk-'),
          },
        };
      }
      default:
        throw new AwsApiError('UnsupportedOperationException', `the stand-in does not implement KMS ${op}`);
    }
  }

  private seal(key: Key, plaintext: Buffer, context: Record<string, string>): Buffer {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.materialOf(key), iv);
    cipher.setAAD(aad(context));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const arn = Buffer.from(key.arn, 'utf8');
    const len = Buffer.alloc(2);
    len.writeUInt16BE(arn.length);
    return Buffer.concat([MAGIC, len, arn, iv, cipher.getAuthTag(), body]);
  }

  private open(key: Key, parsed: ParsedBlob, context: Record<string, string>): Buffer {
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.materialOf(key), parsed.iv);
      decipher.setAAD(aad(context));
      decipher.setAuthTag(parsed.tag);
      return Buffer.concat([decipher.update(parsed.body), decipher.final()]);
    } catch {
      // What KMS answers for a wrong encryption context: the ciphertext does not authenticate.
      throw new AwsApiError(
        'InvalidCiphertextException',
        'the ciphertext or its encryption context does not match',
      );
    }
  }
}

interface ParsedBlob {
  readonly keyArn: string;
  readonly iv: Buffer;
  readonly tag: Buffer;
  readonly body: Buffer;
}

function parseBlob(blob: Buffer): ParsedBlob | undefined {
  if (blob.length < 6 || !blob.subarray(0, 4).equals(MAGIC)) return undefined;
  const len = blob.readUInt16BE(4);
  const start = 6 + len;
  if (blob.length < start + 28) return undefined;
  return {
    keyArn: blob.subarray(6, start).toString('utf8'),
    iv: blob.subarray(start, start + 12),
    tag: blob.subarray(start + 12, start + 28),
    body: blob.subarray(start + 28),
  };
}

/** The encryption context as additional authenticated data: order-independent, like KMS. */
function aad(context: Record<string, string>): Buffer {
  const sorted = Object.keys(context)
    .sort()
    .map((k) => [k, context[k]]);
  return Buffer.from(JSON.stringify(sorted), 'utf8');
}

/** A stable UUID-shaped key id, so the same alias names the same key ARN within a run and across runs. */
function uuidFrom(seed: string): string {
  const h = createHash('sha256').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

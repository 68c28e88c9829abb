import { ConditionalCheckFailedException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { DomainState } from '../domain-status.ts';
import type { CertRecord, TenantHsts } from '../redis-format.ts';
import type { DataKeyProvider } from './data-keys.ts';
import { EnvelopeCipher } from './envelope.ts';
import {
  type CertItem,
  type DomainItem,
  decodeItem,
  keys,
  type Origin,
  PURGE_ATTR_PREFIX,
  type StoredCert,
  type StoredItem,
  type TenantItem,
  TOMBSTONE_TTL_SECONDS,
} from './items.ts';

export interface StoreOptions {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  readonly keys: DataKeyProvider;
}

export interface ScanProgress {
  readonly segment: number;
  readonly items: number;
  readonly pages: number;
}

export interface ScanOptions {
  /** Parallel scan segments (DynamoDB's TotalSegments); default 4. */
  readonly segments?: number;
  /** Items per page (DynamoDB's Limit); default: as many as fit in 1 MB. */
  readonly pageSize?: number;
  /** Called for every page, in parallel across segments; the scan waits for it. */
  readonly onPage: (items: StoredItem[], progress: ScanProgress) => Promise<void>;
}

/** Was a versioned write applied, or was the table's copy as new or newer? */
export type WriteResult = 'written' | 'stale';

const UPSERT_IF_NEWER = 'attribute_not_exists(PK) OR version < :v';
// A removal wins over an upsert of the same version, so an add replayed after it changes nothing.
const REMOVE_IF_NEWER =
  'attribute_not_exists(PK) OR version < :v OR (version = :v AND attribute_not_exists(deleted))';

/**
 * The durable source of truth over the single table: tenants, domains, certificates (private key
 * envelope-encrypted), purge generations and per-entity event versions. Every write carries a
 * version and only ever moves an item forward; removals leave tombstones that expire by TTL.
 */
export class Store {
  private readonly doc: DynamoDBDocumentClient;
  private readonly table: string;
  readonly cipher: EnvelopeCipher;

  constructor(opts: StoreOptions) {
    this.doc = DynamoDBDocumentClient.from(opts.client, { marshallOptions: { removeUndefinedValues: true } });
    this.table = opts.tableName;
    this.cipher = new EnvelopeCipher(opts.keys);
  }

  /** The next version for an entity (an atomic counter in EVENT#<entity>/VERSION). */
  async nextVersion(entity: string): Promise<number> {
    const out = await this.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: keys.eventVersion(entity),
        UpdateExpression: 'SET version = if_not_exists(version, :zero) + :one',
        ExpressionAttributeValues: { ':zero': 0, ':one': 1 },
        ReturnValues: 'UPDATED_NEW',
      }),
    );
    return Number(out.Attributes?.version);
  }

  /** The whole tenant: an absent `hsts` turns HSTS off. */
  putTenant(id: string, origin: Origin, version: number, hsts?: TenantHsts): Promise<WriteResult> {
    return this.put(
      { ...keys.tenant(id), kind: 'tenant', id, origin, ...(hsts ? { hsts } : {}), version },
      UPSERT_IF_NEWER,
    );
  }

  removeTenant(id: string, version: number): Promise<WriteResult> {
    return this.put({ ...keys.tenant(id), kind: 'tenant', id, ...tombstone(version) }, REMOVE_IF_NEWER);
  }

  async getTenant(id: string): Promise<TenantItem | undefined> {
    return (await this.get(keys.tenant(id))) as TenantItem | undefined;
  }

  /** A domain with its onboarding state; without one it reads as verified (records before statuses). */
  putDomain(domain: string, tenant: string, version: number, state: DomainState = {}): Promise<WriteResult> {
    return this.put(
      { ...keys.domain(domain), kind: 'domain', domain, tenant, version, ...state },
      UPSERT_IF_NEWER,
    );
  }

  /**
   * Moves a live domain to a new status with a newer version, keeping its tenant and token;
   * `verifiedAt` is set once and then kept. Stale when the table has a newer version or a removal.
   */
  async setDomainStatus(
    domain: string,
    version: number,
    change: Required<Pick<DomainState, 'status'>> & Pick<DomainState, 'reason' | 'verifiedAt'>,
  ): Promise<WriteResult> {
    const set = ['#s = :s', 'version = :v'];
    const values: Record<string, unknown> = { ':s': change.status, ':v': version };
    if (change.reason !== undefined) {
      set.push('reason = :r');
      values[':r'] = change.reason;
    }
    if (change.verifiedAt !== undefined) {
      set.push('verifiedAt = if_not_exists(verifiedAt, :va)');
      values[':va'] = change.verifiedAt;
    }
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: keys.domain(domain),
          UpdateExpression: `SET ${set.join(', ')}${change.reason === undefined ? ' REMOVE reason' : ''}`,
          ConditionExpression: 'attribute_exists(PK) AND version < :v AND attribute_not_exists(deleted)',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: values,
        }),
      );
      return 'written';
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return 'stale';
      throw err;
    }
  }

  removeDomain(domain: string, version: number): Promise<WriteResult> {
    return this.put(
      { ...keys.domain(domain), kind: 'domain', domain, ...tombstone(version) },
      REMOVE_IF_NEWER,
    );
  }

  async getDomain(domain: string): Promise<DomainItem | undefined> {
    return (await this.get(keys.domain(domain))) as DomainItem | undefined;
  }

  /** Stores a certificate unless the table has one as new (its version is the expiry). */
  async putCert(domain: string, record: CertRecord): Promise<WriteResult> {
    const key = await this.cipher.seal(record.privkey_pem, domain);
    const item: CertItem & Record<string, unknown> = {
      ...keys.cert(domain),
      kind: 'cert',
      domain,
      version: record.expiry,
      fullchain_pem: record.fullchain_pem,
      cert_pem: record.cert_pem,
      expiry: record.expiry,
      key,
    };
    return this.put(item, UPSERT_IF_NEWER);
  }

  /** Revokes the certificate with this version (expiry) and any older one. */
  revokeCert(domain: string, version: number): Promise<WriteResult> {
    return this.put({ ...keys.cert(domain), kind: 'cert', domain, ...tombstone(version) }, REMOVE_IF_NEWER);
  }

  async getCert(domain: string): Promise<StoredCert | undefined> {
    const item = (await this.get(keys.cert(domain))) as CertItem | undefined;
    return item && this.openCert(item);
  }

  /** A certificate item as lua-resty-auto-ssl's record, its private key decrypted. */
  async openCert(item: CertItem): Promise<StoredCert> {
    if (item.deleted || !item.key || !item.fullchain_pem || !item.cert_pem || !item.expiry) {
      return { state: 'revoked', version: item.version };
    }
    const privkey_pem = await this.cipher.open(item.key, item.domain);
    return {
      state: 'live',
      version: item.version,
      record: {
        fullchain_pem: item.fullchain_pem,
        privkey_pem,
        cert_pem: item.cert_pem,
        expiry: item.expiry,
      },
    };
  }

  /** Records a purge generation for bootstrap; a generation never goes back. */
  async recordPurge(tenant: string, field: string, generation: number): Promise<WriteResult> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: keys.purge(tenant),
          UpdateExpression: 'SET #f = :g',
          ConditionExpression: 'attribute_not_exists(#f) OR #f < :g',
          ExpressionAttributeNames: { '#f': `${PURGE_ATTR_PREFIX}${field}` },
          ExpressionAttributeValues: { ':g': generation },
        }),
      );
      return 'written';
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return 'stale';
      throw err;
    }
  }

  async getPurges(tenant: string): Promise<Record<string, number>> {
    const item = await this.get(keys.purge(tenant));
    return item?.kind === 'purge' ? item.generations : {};
  }

  /** Reads the whole table: `segments` parallel scans, each paginated; tombstones included. */
  async scan(opts: ScanOptions): Promise<{ items: number; pages: number }> {
    const segments = opts.segments ?? 4;
    let items = 0;
    let pages = 0;
    await Promise.all(
      Array.from({ length: segments }, async (_, segment) => {
        let start: Record<string, unknown> | undefined;
        let segItems = 0;
        let segPages = 0;
        do {
          const out = await this.doc.send(
            new ScanCommand({
              TableName: this.table,
              Segment: segment,
              TotalSegments: segments,
              Limit: opts.pageSize,
              ExclusiveStartKey: start,
            }),
          );
          start = out.LastEvaluatedKey;
          const decoded = (out.Items ?? []).flatMap((raw) => decodeItem(raw) ?? []);
          segItems += decoded.length;
          segPages += 1;
          items += decoded.length;
          pages += 1;
          await opts.onPage(decoded, { segment, items: segItems, pages: segPages });
        } while (start);
      }),
    );
    return { items, pages };
  }

  private async get(key: Record<string, string>): Promise<StoredItem | undefined> {
    const out = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: key, ConsistentRead: true }),
    );
    return out.Item ? decodeItem(out.Item) : undefined;
  }

  private async put(item: Record<string, unknown>, condition: string): Promise<WriteResult> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: item,
          ConditionExpression: condition,
          ExpressionAttributeValues: { ':v': item.version },
        }),
      );
      return 'written';
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return 'stale';
      throw err;
    }
  }
}

function tombstone(version: number) {
  return { version, deleted: true, expiresAt: Math.floor(Date.now() / 1000) + TOMBSTONE_TTL_SECONDS };
}

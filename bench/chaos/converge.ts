import { isDeepStrictEqual } from 'node:util';
import type { Redis } from 'ioredis';
import { isVerified } from '../../lib/core/domain-status.ts';
import type { RedisKeys } from '../../lib/core/redis-format.ts';
import type { CertItem, StoredItem } from '../../lib/core/store/items.ts';
import type { Store } from '../../lib/core/store/store.ts';

/** What every region's Redis must hold, from the table, in the documented Redis format. */
export interface Expected {
  /** Key → parsed value of every tenant and domain record that must exist. */
  readonly records: Map<string, unknown>;
  /** Key → the certificate's expiry and cert_pem. */
  readonly certs: Map<string, { expiry: number; cert_pem: string }>;
  /** Purge hash key → field → the table's generation. */
  readonly purges: Map<string, Record<string, number>>;
}

export interface Difference {
  readonly region: string;
  readonly kind: 'tenant' | 'domain' | 'cert' | 'purge';
  readonly key: string;
  readonly what: string;
}

/** The table as the edge's Redis should show it (lib/core/redis-format.ts, the bootstrap's writes). */
export async function expectedFromTable(store: Store, keys: RedisKeys): Promise<Expected> {
  const items: StoredItem[] = [];
  await store.scan({ segments: 2, onPage: async (page) => void items.push(...page) });
  const records = new Map<string, unknown>();
  const certs = new Map<string, { expiry: number; cert_pem: string }>();
  const purges = new Map<string, Record<string, number>>();
  for (const item of items) {
    switch (item.kind) {
      case 'tenant':
        if (!item.deleted && item.origin)
          records.set(keys.tenant(item.id), { id: item.id, origin: item.origin, version: item.version });
        break;
      case 'domain':
        if (!item.deleted && item.tenant && isVerified(item))
          records.set(keys.domain(item.domain), {
            domain: item.domain,
            tenant: item.tenant,
            version: item.version,
          });
        break;
      case 'cert': {
        const c = item as CertItem;
        if (!c.deleted && c.cert_pem && c.expiry)
          certs.set(keys.cert(c.domain), { expiry: c.expiry, cert_pem: c.cert_pem });
        break;
      }
      case 'purge':
        purges.set(keys.purge(item.tenant), item.generations);
        break;
    }
  }
  return { records, certs, purges };
}

/** Every way one region's Redis differs from the table; empty when it has converged. */
export async function compareRegion(
  region: string,
  redis: Redis,
  keys: RedisKeys,
  want: Expected,
): Promise<Difference[]> {
  const out: Difference[] = [];
  const p = keys.prefix;
  const [tenantKeys, domainKeys, certKeys] = await Promise.all([
    redis.keys(`${p}:@tenant:*`),
    redis.keys(`${p}:@domain:*`),
    redis.keys(`${p}:*:latest`),
  ]);
  const kindOf = (key: string) => (key.startsWith(`${p}:@tenant:`) ? 'tenant' : 'domain');
  for (const key of [...tenantKeys, ...domainKeys])
    if (!want.records.has(key)) out.push({ region, kind: kindOf(key), key, what: 'not in the table' });
  for (const [key, value] of want.records) {
    const raw = await redis.get(key);
    if (raw === null) out.push({ region, kind: kindOf(key), key, what: 'missing' });
    else if (!isDeepStrictEqual(JSON.parse(raw), value))
      out.push({ region, kind: kindOf(key), key, what: `differs: ${raw}` });
  }
  const ownCerts = certKeys.filter((k) => keys.domainOfCertKey(k) !== undefined);
  for (const key of ownCerts)
    if (!want.certs.has(key)) out.push({ region, kind: 'cert', key, what: 'not in the table (or revoked)' });
  for (const [key, cert] of want.certs) {
    const raw = await redis.get(key);
    if (raw === null) {
      out.push({ region, kind: 'cert', key, what: 'missing' });
      continue;
    }
    const got = JSON.parse(raw) as { expiry?: number; cert_pem?: string };
    if (got.expiry !== cert.expiry || got.cert_pem !== cert.cert_pem)
      out.push({ region, kind: 'cert', key, what: `expiry ${got.expiry}, table ${cert.expiry}` });
  }
  for (const [key, generations] of want.purges) {
    const got = await redis.hgetall(key);
    for (const [field, generation] of Object.entries(generations)) {
      // A tenant-wide purge covers every finer one up to its generation, and the edge drops
      // those fields then (lua/edge/purge.lua): what counts is the newer of the field and "t".
      const have = Math.max(Number(got[field] ?? 0), Number(got.t ?? 0));
      if (have < generation)
        out.push({ region, kind: 'purge', key, what: `${field}: ${have || 'none'} < table ${generation}` });
    }
  }
  return out;
}

export async function compareAll(
  store: Store,
  keys: RedisKeys,
  regions: readonly { name: string; redis: Redis }[],
): Promise<Difference[]> {
  const want = await expectedFromTable(store, keys);
  const diffs = await Promise.all(regions.map((r) => compareRegion(r.name, r.redis, keys, want)));
  return diffs.flat();
}

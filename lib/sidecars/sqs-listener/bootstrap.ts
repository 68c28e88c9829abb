import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { isVerified } from '../../core/domain-status.ts';
import type { StoredItem } from '../../core/store/items.ts';
import type { Store } from '../../core/store/store.ts';
import type { Replica, Write } from '../listener-runtime/replica.ts';

export interface BootstrapOptions {
  /** Parallel scan segments; default 8. */
  readonly segments?: number;
  /** Items per scan page; default 500. */
  readonly pageSize?: number;
  /** Progress is logged at most this often; default 1000 ms. */
  readonly progressEveryMs?: number;
}

export interface BootstrapResult {
  readonly items: number;
  readonly certificates: number;
  readonly pages: number;
  readonly ms: number;
}

/**
 * Loads the whole store into the task's Redis: a parallel, paginated scan; each page decrypted
 * and written in one pipeline through the same versioned script events use, so events applied
 * before or after (and tombstones) always converge on the newest state.
 */
export async function bootstrap(
  store: Store,
  redis: Redis,
  replica: Replica,
  log: Logger,
  opts: BootstrapOptions = {},
): Promise<BootstrapResult> {
  const started = Date.now();
  let items = 0;
  let certificates = 0;
  let lastLog = started;
  const every = opts.progressEveryMs ?? 1000;
  log.info({ segments: opts.segments ?? 8 }, 'bootstrap started');
  const result = await store.scan({
    segments: opts.segments ?? 8,
    pageSize: opts.pageSize ?? 500,
    onPage: async (page, progress) => {
      const writes = await Promise.all(page.map((item) => toWrite(store, replica, item)));
      const pipeline = redis.pipeline();
      for (const [i, w] of writes.entries()) {
        const item = page[i];
        if (item?.kind === 'purge') replica.queuePurges(pipeline, item.tenant, item.generations);
        else if (w) replica.queue(pipeline, w);
        if (item?.kind === 'cert' && w?.op === 'set') certificates += 1;
      }
      const results = await pipeline.exec();
      const failed = results?.find(([err]) => err);
      if (failed) throw failed[0];
      items += page.length;
      if (Date.now() - lastLog >= every) {
        lastLog = Date.now();
        log.info(
          { items, certificates, segment: progress.segment, ms: lastLog - started },
          'bootstrap progress',
        );
      }
    },
  });
  const done = { items, certificates, pages: result.pages, ms: Date.now() - started };
  log.info(done, 'bootstrap finished');
  return done;
}

async function toWrite(store: Store, replica: Replica, item: StoredItem): Promise<Write | undefined> {
  const keys = replica.keys;
  switch (item.kind) {
    case 'tenant': {
      const base = { entity: `tenant:${item.id}`, version: item.version, key: keys.tenant(item.id) };
      if (item.deleted || !item.origin) return { op: 'del', ...base };
      return {
        op: 'set',
        ...base,
        value: JSON.stringify({
          id: item.id,
          origin: item.origin,
          ...(item.hsts ? { hsts: item.hsts } : {}),
          version: item.version,
        }),
      };
    }
    case 'domain': {
      const base = { entity: `domain:${item.domain}`, version: item.version, key: keys.domain(item.domain) };
      // Only a domain whose owner proved control reaches the edge (records before statuses did).
      if (item.deleted || !item.tenant || !isVerified(item)) return { op: 'del', ...base };
      return {
        op: 'set',
        ...base,
        value: JSON.stringify({ domain: item.domain, tenant: item.tenant, version: item.version }),
      };
    }
    case 'cert': {
      const opened = await store.openCert(item);
      const base = { entity: `cert:${item.domain}`, version: opened.version, key: keys.cert(item.domain) };
      if (opened.state === 'revoked') return { op: 'del', ...base };
      return { op: 'set', ...base, value: JSON.stringify(opened.record) };
    }
    case 'purge':
      return undefined;
  }
}

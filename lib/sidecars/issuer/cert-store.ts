import type { Redis } from 'ioredis';
import { type CertRecord, certRecordSchema, type RedisKeys } from '../../core/redis-format.ts';
import type { Http01Store } from './acme.ts';

/**
 * The task's Redis as the issuer sees it: certificates in lua-resty-auto-ssl's format, the domain
 * registry (presence of `<prefix>:@domain:<domain>` is what allows issuance) and stored HTTP-01
 * answers for edges that run without the account thumbprint.
 */
export class RedisCertStore implements Http01Store {
  constructor(
    private readonly redis: Redis,
    readonly keys: RedisKeys,
  ) {}

  async get(domain: string): Promise<CertRecord | undefined> {
    const raw = await this.redis.get(this.keys.cert(domain));
    if (!raw) return undefined;
    let doc: unknown;
    try {
      doc = JSON.parse(raw);
    } catch {
      return undefined;
    }
    const parsed = certRecordSchema.safeParse(doc);
    return parsed.success ? parsed.data : undefined;
  }

  /** Writes the record byte-compatible with lua-resty-auto-ssl (same field order). */
  async put(domain: string, record: CertRecord): Promise<void> {
    const value = JSON.stringify({
      fullchain_pem: record.fullchain_pem,
      privkey_pem: record.privkey_pem,
      cert_pem: record.cert_pem,
      expiry: record.expiry,
    });
    await this.redis.set(this.keys.cert(domain), value);
  }

  async allowed(domain: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.domain(domain))) === 1;
  }

  async set(domain: string, token: string, keyAuthorization: string): Promise<void> {
    await this.redis.set(this.keys.challenge(domain, token), keyAuthorization, 'EX', 600);
  }

  async remove(domain: string, token: string): Promise<void> {
    await this.redis.del(this.keys.challenge(domain, token));
  }

  /** Every domain with a certificate in this Redis. */
  async domains(): Promise<string[]> {
    const out: string[] = [];
    const stream = this.redis.scanStream({ match: `${this.keys.prefix}:*:latest`, count: 500 });
    for await (const batch of stream as AsyncIterable<string[]>) {
      for (const key of batch) {
        const domain = this.keys.domainOfCertKey(key);
        if (domain) out.push(domain);
      }
    }
    return out;
  }
}

/**
 * bench/tls-probe.sh's tenant: writes to the probe's Redis a tenant whose HSTS is on (the
 * record format of lib/core/redis-format.ts), its origin, and a certificate for its subdomain.
 * Usage: tsx bench/tls-probe-seed.ts <redis port> <prefix> <tenant host> <origin url>
 */
import { Redis } from 'ioredis';
import { RedisKeys, tenantRecordSchema } from '../lib/core/redis-format.ts';
import { makeCertRecord } from '../lib/local/self-signed-cert.ts';

const [port, prefix, host, originUrl] = process.argv.slice(2);
if (!port || !prefix || !host || !originUrl) {
  throw new Error(
    `usage: tls-probe-seed <redis port> <prefix> <host> <origin url>; got ${process.argv.slice(2)}`,
  );
}
const id = host.split('.')[0] as string;
const tenant = tenantRecordSchema.parse({
  id,
  origin: { type: 'http', url: originUrl },
  hsts: { maxAgeSeconds: 31536000, includeSubDomains: true, preload: true },
});
const keys = new RedisKeys(prefix);
const redis = new Redis({ port: Number(port), maxRetriesPerRequest: 1 });
try {
  await redis.set(keys.tenant(id), JSON.stringify(tenant));
  await redis.set(keys.cert(host), JSON.stringify(await makeCertRecord([host])));
} finally {
  redis.disconnect();
}

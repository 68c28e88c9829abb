/**
 * The local quick start: one region on this machine, no AWS. Starts Redis, a static-website
 * origin with a demo tenant, and the edge (nginx + the project's Lua), then prints how to reach it.
 * Ctrl-C stops everything.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { RedisKeys } from '../lib/core/redis-format.ts';
import { startEdge } from '../lib/local/edge-server.ts';
import { startRedisServer } from '../lib/local/redis-server.ts';
import { makeCertRecord } from '../lib/local/self-signed-cert.ts';
import { startStaticOrigin } from '../lib/local/static-origin.ts';

const num = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const ports = {
  http: num('EDGE_HTTP_PORT', 8080),
  https: num('EDGE_HTTPS_PORT', 8443),
  control: num('EDGE_CONTROL_PORT', 9145),
  redis: num('EDGE_REDIS_PORT', 6380),
  origin: num('EDGE_ORIGIN_PORT', 8090),
};
const platform = process.env.EDGE_PLATFORM_DOMAIN ?? 'platform.localhost';
const dir = resolve(process.env.EDGE_RUN_DIR ?? '.run/local');

rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const token = process.env.EDGE_CONTROL_TOKEN ?? randomBytes(24).toString('hex');
writeFileSync(join(dir, 'control-token'), token, { mode: 0o600 });

const redisServer = await startRedisServer({ port: ports.redis, dir });
const origin = await startStaticOrigin('examples/demo-site', ports.origin);
const edge = await startEdge({
  dir,
  controlToken: token,
  config: {
    region: 'local',
    platformDomain: platform,
    listen: {
      address: '127.0.0.1',
      httpPort: ports.http,
      httpsPort: ports.https,
      controlPort: ports.control,
    },
    redis: { port: ports.redis },
  },
});

// The demo tenant, as the sqs-listener would load it from the table.
const keys = new RedisKeys(edge.config.redis.prefix);
const redis = new Redis({ port: ports.redis });
await redis.set(
  keys.tenant('demo'),
  JSON.stringify({ id: 'demo', origin: { type: 'http', url: `http://127.0.0.1:${ports.origin}` } }),
);
await redis.set(
  keys.domain('www.demo.localhost'),
  JSON.stringify({ domain: 'www.demo.localhost', tenant: 'demo' }),
);
await redis.set(
  keys.cert(`*.${platform}`),
  JSON.stringify(await makeCertRecord([`*.${platform}`, platform])),
);
await redis.set(
  keys.cert('www.demo.localhost'),
  JSON.stringify(await makeCertRecord(['www.demo.localhost'])),
);
redis.disconnect();

const r = (host: string) => `--resolve ${host}:${ports.https}:127.0.0.1`;
console.log(`
The local edge is running (logs and config in ${dir}).

  Platform subdomain:  curl -k ${r(`demo.${platform}`)} https://demo.${platform}:${ports.https}/
  Platform directory:  curl -k ${r(platform)} https://${platform}:${ports.https}/demo/about.txt
  Custom domain:       curl -k ${r('www.demo.localhost')} https://www.demo.localhost:${ports.https}/ -I
  HTTP → HTTPS:        curl -I --resolve www.demo.localhost:${ports.http}:127.0.0.1 http://www.demo.localhost:${ports.http}/
  Purge the tenant:    curl -X POST -H "Authorization: Bearer $(cat ${join(dir, 'control-token')})" \\
                         http://127.0.0.1:${ports.control}/purge -d '{"tenant":"demo","scope":"tenant"}'
  Metrics:             curl http://127.0.0.1:${ports.control}/metrics

(The certificates are self-signed demo certificates, hence -k.) Ctrl-C stops everything.
`);

let stopping = false;
async function stop() {
  if (stopping) process.exit(1); // a second signal: leave now
  stopping = true;
  await edge.process.stop();
  origin.close();
  await redisServer.stop();
  process.exit(0);
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

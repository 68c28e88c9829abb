/**
 * The local quick start: one region on this machine, no AWS. Starts Redis, dynalite, Pebble
 * (the ACME test CA) with pebble-challtestsrv, the issuer sidecar, a static-website origin with
 * a demo tenant, and the edge (nginx + the project's Lua), then prints how to reach it.
 * Ctrl-C stops everything.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { RedisKeys } from '../lib/core/redis-format.ts';
import { ensureTable } from '../lib/core/table.ts';
import { startDynalite } from '../lib/local/dynalite.ts';
import { startEdge } from '../lib/local/edge-server.ts';
import { startPebble } from '../lib/local/pebble.ts';
import { startRedisServer } from '../lib/local/redis-server.ts';
import { makeCertRecord } from '../lib/local/self-signed-cert.ts';
import { startStaticOrigin } from '../lib/local/static-origin.ts';
import { FileAccountKey, jwkThumbprint } from '../lib/sidecars/issuer/account-key.ts';
import { parseIssuerConfig } from '../lib/sidecars/issuer/config.ts';
import { startIssuerService } from '../lib/sidecars/issuer/service.ts';
import { createLogger } from '../lib/sidecars/runtime/logger.ts';

const num = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const ports = {
  http: num('EDGE_HTTP_PORT', 8080),
  https: num('EDGE_HTTPS_PORT', 8443),
  control: num('EDGE_CONTROL_PORT', 9145),
  redis: num('EDGE_REDIS_PORT', 6380),
  origin: num('EDGE_ORIGIN_PORT', 8090),
  issuer: num('EDGE_ISSUER_PORT', 9180),
  dynamodb: num('EDGE_DYNAMODB_PORT', 8000),
};
const platform = process.env.EDGE_PLATFORM_DOMAIN ?? 'platform.localhost';
const dir = resolve(process.env.EDGE_RUN_DIR ?? '.run/local');
const table = 'edge-local';

rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const token = process.env.EDGE_CONTROL_TOKEN ?? randomBytes(24).toString('hex');
writeFileSync(join(dir, 'control-token'), token, { mode: 0o600 });

const redisServer = await startRedisServer({ port: ports.redis, dir });
const origin = await startStaticOrigin('examples/demo-site', ports.origin);

// On-demand issuance: one ACME account, whose thumbprint lets the edge answer HTTP-01 without
// state; Pebble validates on the edge's port-80 listener.
const accountPath = join(dir, 'acme-account.pem');
const thumbprint = jwkThumbprint(await new FileAccountKey(accountPath, true).load());
const dynalite = await startDynalite({ port: ports.dynamodb, dir });
const dynamo = dynalite.client();
await ensureTable(dynamo, table);
dynamo.destroy();
const pebble = await startPebble({ dir, httpPort: ports.http });

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
    tls: { issuerUrl: `http://127.0.0.1:${ports.issuer}`, issuerWaitMs: 5000 },
    acme: { accountThumbprint: thumbprint },
  },
});

const issuer = await startIssuerService(
  parseIssuerConfig({
    region: 'local',
    platformDomain: platform,
    listen: { host: '127.0.0.1', port: ports.issuer },
    redis: { port: ports.redis },
    table: { name: table, endpoint: dynalite.endpoint, region: 'local' },
    acme: {
      cas: [{ name: 'pebble', directoryUrl: pebble.directoryUrl }],
      account: { source: 'file', path: accountPath },
      trustPem: pebble.wfeCaPem,
    },
    dns: { provider: 'challtestsrv', url: pebble.challtestsrvUrl },
    renewal: { enabled: false },
  }),
  createLogger({ service: 'issuer', region: 'local' }, pino.destination({ dest: join(dir, 'issuer.log') })),
);
const pebbleRoot = join(dir, 'pebble-root.pem');
writeFileSync(pebbleRoot, await pebble.root());

// The demo tenant, as the sqs-listener would load it from the table.
const keys = new RedisKeys(edge.config.redis.prefix);
const redis = new Redis({ port: ports.redis });
await redis.set(
  keys.tenant('demo'),
  JSON.stringify({ id: 'demo', origin: { type: 'http', url: `http://127.0.0.1:${ports.origin}` } }),
);
for (const domain of ['www.demo.localhost', 'shop.demo.localhost']) {
  await redis.set(keys.domain(domain), JSON.stringify({ domain, tenant: 'demo' }));
}
await redis.set(
  keys.cert(`*.${platform}`),
  JSON.stringify(await makeCertRecord([`*.${platform}`, platform])),
);
// www has a self-signed demo certificate; shop has none until its first handshake.
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
  On-demand TLS:       curl --cacert ${pebbleRoot} ${r('shop.demo.localhost')} https://shop.demo.localhost:${ports.https}/
                       (the first handshake has Pebble issue the certificate, which chains to Pebble's root)
  HTTP → HTTPS:        curl -I --resolve www.demo.localhost:${ports.http}:127.0.0.1 http://www.demo.localhost:${ports.http}/
  Purge the tenant:    curl -X POST -H "Authorization: Bearer $(cat ${join(dir, 'control-token')})" \\
                         http://127.0.0.1:${ports.control}/purge -d '{"tenant":"demo","scope":"tenant"}'
  Metrics:             curl http://127.0.0.1:${ports.control}/metrics

(The platform and www certificates are self-signed demo certificates, hence -k.) Ctrl-C stops everything.
`);

let stopping = false;
async function stop() {
  if (stopping) process.exit(1); // a second signal: leave now
  stopping = true;
  await issuer.stop(2000);
  await edge.process.stop();
  origin.close();
  await Promise.all([pebble.pebble.stop(), pebble.challtestsrv.stop(), dynalite.process.stop()]);
  await redisServer.stop();
  process.exit(0);
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

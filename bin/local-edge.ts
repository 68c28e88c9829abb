/**
 * The local quick start: one region on this machine, no AWS. Starts Redis (the task's and the
 * bus's), dynalite (the table), Pebble (the ACME test CA) with pebble-challtestsrv (the DNS), the
 * sidecars (issuer, sqs-listener, redis-listener), a static-website origin with a demo tenant,
 * the edge (nginx + the project's Lua) and the control API on loopback, then prints how to reach
 * them. What the API writes reaches the edge as on AWS: table, then bus, then the sqs-listener.
 * Ctrl-C stops everything.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { processEnvironment } from '../lib/config/env-contract.ts';
import { startApiServer } from '../lib/control/api/server.ts';
import { loadCliConfig } from '../lib/control/cli/config.ts';
import { wire } from '../lib/control/cli/wiring.ts';
import { RedisKeys } from '../lib/core/redis-format.ts';
import { ensureTable } from '../lib/core/table.ts';
import { startDynalite } from '../lib/local/dynalite.ts';
import { startEdge } from '../lib/local/edge-server.ts';
import { startPebble } from '../lib/local/pebble.ts';
import { ManagedProcess } from '../lib/local/process.ts';
import { startRedisServer } from '../lib/local/redis-server.ts';
import { makeCertRecord } from '../lib/local/self-signed-cert.ts';
import { startStaticOrigin } from '../lib/local/static-origin.ts';
import { FileAccountKey, jwkThumbprint } from '../lib/sidecars/issuer/account-key.ts';
import { parseIssuerConfig } from '../lib/sidecars/issuer/config.ts';
import { startIssuerService } from '../lib/sidecars/issuer/service.ts';
import { redisListenerEnv } from '../lib/sidecars/redis-listener/config.ts';
import { createLogger } from '../lib/sidecars/runtime/logger.ts';
import { sqsListenerEnv } from '../lib/sidecars/sqs-listener/config.ts';

const num = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const ports = {
  http: num('EDGE_HTTP_PORT', 8080),
  https: num('EDGE_HTTPS_PORT', 8443),
  control: num('EDGE_CONTROL_PORT', 9145),
  redis: num('EDGE_REDIS_PORT', 6380),
  origin: num('EDGE_ORIGIN_PORT', 8090),
  issuer: num('EDGE_ISSUER_PORT', 9180),
  dynamodb: num('EDGE_DYNAMODB_PORT', 8000),
  api: num('EDGE_API_PORT', 8787),
  bus: num('EDGE_BUS_PORT', 6381),
  sqsListener: num('EDGE_SQS_LISTENER_PORT', 9181),
  redisListener: num('EDGE_REDIS_LISTENER_PORT', 9182),
};
const platform = process.env.EDGE_PLATFORM_DOMAIN ?? 'platform.localhost';
const dir = resolve(process.env.EDGE_RUN_DIR ?? '.run/local');
const table = 'edge-local';
/** Delegated DNS-01 answers here (in challtestsrv): `_acme-challenge.<domain>` CNAMEs into it. */
const challengeZone = `acme-delegation.${platform}`;
const apiRegion = 'local';

rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const token = process.env.EDGE_CONTROL_TOKEN ?? randomBytes(24).toString('hex');
writeFileSync(join(dir, 'control-token'), token, { mode: 0o600 });
// The local key pair the control API accepts (SigV4), as IAM credentials would be on AWS.
const apiKey = {
  accessKeyId: process.env.EDGE_API_ACCESS_KEY_ID ?? 'local',
  secretAccessKey: process.env.EDGE_API_SECRET_ACCESS_KEY ?? randomBytes(18).toString('hex'),
};
writeFileSync(join(dir, 'api-secret'), apiKey.secretAccessKey, { mode: 0o600 });
const keyFile = join(dir, 'local-master.key');

const redisServer = await startRedisServer({ port: ports.redis, dir });
const busRedis = await startRedisServer({ port: ports.bus, dir });
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
    delegation: { zone: challengeZone, resolvers: [pebble.dnsServer] },
    renewal: { enabled: false },
  }),
  createLogger({ service: 'issuer', region: 'local' }, pino.destination({ dest: join(dir, 'issuer.log') })),
);
const pebbleRoot = join(dir, 'pebble-root.pem');
writeFileSync(pebbleRoot, await pebble.root());

// The listeners, as in a task: the sqs-listener applies the bus's events (and bootstraps from the
// table) to the task's Redis; the redis-listener persists certificates written there.
const common = {
  region: 'local',
  logLevel: 'info' as const,
  redisHost: '127.0.0.1',
  redisPort: ports.redis,
  redisPrefix: edge.config.redis.prefix,
  tableName: table,
  dynamodbEndpoint: dynalite.endpoint,
  keySource: 'file' as const,
  localKeyFile: keyFile,
  bus: 'redis' as const,
  busRedisUrl: `redis://127.0.0.1:${ports.bus}`,
  healthHost: '127.0.0.1',
};
// The quick start's own EDGE_* settings (its ports) are not the sidecars'.
const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('EDGE_')));
const sidecar = (name: string, bin: string, healthPort: number, env: Record<string, string>) =>
  ManagedProcess.start({
    name,
    command: process.execPath,
    args: ['--import', 'tsx', fileURLToPath(new URL(`../${bin}`, import.meta.url))],
    env: { ...inherited, ...env },
    logFile: join(dir, `${name}.log`),
    readyTimeoutMs: 90_000,
    ready: async () =>
      (await fetch(`http://127.0.0.1:${healthPort}/readyz`).catch(() => undefined))?.ok === true,
  });
const [sqsListener, redisListener] = await Promise.all([
  sidecar(
    'sqs-listener',
    'bin/sqs-listener.ts',
    ports.sqsListener,
    processEnvironment(sqsListenerEnv, {
      ...common,
      taskId: `local-${process.pid}`,
      healthPort: ports.sqsListener,
      edgeControlUrl: `http://127.0.0.1:${ports.control}`,
      edgeControlToken: token,
    }),
  ),
  sidecar(
    'redis-listener',
    'bin/redis-listener.ts',
    ports.redisListener,
    processEnvironment(redisListenerEnv, {
      ...common,
      taskId: `local-${process.pid}`,
      healthPort: ports.redisListener,
    }),
  ),
]);

// The control API: the CLI's operations over HTTP, and the deployment's one re-check scheduler.
// Ownership proofs and challenge CNAMEs are looked up in challtestsrv, where "DNS" lives here.
const wired = wire(
  loadCliConfig(
    {},
    {
      EDGE_TABLE_NAME: table,
      EDGE_DYNAMODB_ENDPOINT: dynalite.endpoint,
      EDGE_REGION: 'local',
      EDGE_BUS: 'redis',
      EDGE_BUS_REDIS_URL: common.busRedisUrl,
      EDGE_KEY_SOURCE: 'file',
      EDGE_LOCAL_KEY_FILE: keyFile,
      EDGE_DNS_ADDRESSES: '127.0.0.1',
      EDGE_DNS_SERVERS: pebble.dnsServer,
      EDGE_DNS01_CHALLENGE_ZONE: challengeZone,
    },
  ),
);
const api = await startApiServer({
  control: wired.control,
  credentials: [apiKey],
  region: apiRegion,
  port: ports.api,
  recheckSeconds: num('EDGE_API_RECHECK_SECONDS', 300),
  log: createLogger(
    { service: 'control-api', region: 'local' },
    pino.destination({ dest: join(dir, 'api.log') }),
  ),
});

// The demo tenant and its domains through the control plane (table, then bus), vouched for by
// the operator; certificates written to the task's Redis as the issuer would (the redis-listener
// persists them).
await wired.control.tenants.add('demo', { type: 'http', url: `http://127.0.0.1:${ports.origin}` });
for (const domain of ['www.demo.localhost', 'shop.demo.localhost']) {
  await wired.control.domains.add(domain, 'demo', { skipDnsCheck: true, preverified: true });
}
const keys = new RedisKeys(edge.config.redis.prefix);
const redis = new Redis({ port: ports.redis });
await redis.set(
  keys.cert(`*.${platform}`),
  JSON.stringify(await makeCertRecord([`*.${platform}`, platform])),
);
// www has a self-signed demo certificate; shop has none until its first handshake.
await redis.set(
  keys.cert('www.demo.localhost'),
  JSON.stringify(await makeCertRecord(['www.demo.localhost'])),
);
// The sqs-listener applies events on its own time: the quick start is ready once it has.
for (
  let i = 0;
  i < 300 && (await redis.exists(keys.tenant('demo'), keys.domain('shop.demo.localhost'))) < 2;
  i++
) {
  await new Promise((r) => setTimeout(r, 100));
}
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

  Control API:         ${api.url} (OpenAPI 3.1 at ${api.url}/openapi.json), SigV4 with the local key pair
                       ${apiKey.accessKeyId} / $(cat ${join(dir, 'api-secret')}), region ${apiRegion}, service execute-api:
                       curl -s --aws-sigv4 aws:amz:${apiRegion}:execute-api --user "${apiKey.accessKeyId}:$(cat ${join(dir, 'api-secret')})" ${api.url}/tenants
                       (DNS here is challtestsrv: its API at ${pebble.challtestsrvUrl} sets the TXT and CNAME records a tenant would create)

(The platform and www certificates are self-signed demo certificates, hence -k.) Ctrl-C stops everything.
`);

let stopping = false;
async function stop() {
  if (stopping) process.exit(1); // a second signal: leave now
  stopping = true;
  await api.close();
  await Promise.all([issuer.stop(2000), sqsListener.stop(), redisListener.stop()]);
  await wired.close();
  await edge.process.stop();
  origin.close();
  await Promise.all([pebble.pebble.stop(), pebble.challtestsrv.stop(), dynalite.process.stop()]);
  await Promise.all([redisServer.stop(), busRedis.stop()]);
  process.exit(0);
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

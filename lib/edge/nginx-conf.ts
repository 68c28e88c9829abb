import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Mustache from 'mustache';
import type { EdgeConfig } from '../config/edge-config.ts';
import { ticketKeyDir } from './ticket-keys.ts';

/**
 * Where the template may be, seen from this module: `lib/edge/` in the source tree (tsx, tests),
 * `dist/lib/edge/` in the sidecar image, which keeps the template beside `dist/` at
 * `/app/edge-image/` (edge-image/Dockerfile.sidecars).
 */
export function nginxTemplateCandidates(moduleUrl: string | URL = import.meta.url): string[] {
  return ['../../edge-image/nginx.conf.mustache', '../../../edge-image/nginx.conf.mustache'].map((rel) =>
    fileURLToPath(new URL(rel, moduleUrl)),
  );
}

/** The first candidate that exists; the source tree's path when none does (the read then names it). */
export function resolveNginxTemplate(
  moduleUrl: string | URL = import.meta.url,
  exists: (path: string) => boolean = existsSync,
): string {
  const candidates = nginxTemplateCandidates(moduleUrl);
  return candidates.find(exists) ?? (candidates[0] as string);
}

export const NGINX_TEMPLATE_PATH = resolveNginxTemplate();

/** The part of the config the Lua modules read at init (no secrets: those come from env). */
export function luaRuntimeConfig(config: EdgeConfig) {
  return {
    region: config.region,
    platform_domain: config.platformDomain,
    https_port: config.listen.httpsPort,
    redis: {
      host: config.redis.host,
      port: config.redis.port,
      prefix: config.redis.prefix,
      timeout_ms: config.timeouts.redisMs,
      pool_size: config.redis.poolSize,
    },
    tls: {
      engine: config.tls.engine,
      lru_size: config.tls.lruSize,
      shm_ttl: config.tls.shmTtlSeconds,
      push: config.tls.engine === 'native' && config.tls.pushCertificates,
      miss_ttl: config.tls.missTtlSeconds,
      fallback_log_interval_s: config.tls.fallbackLogIntervalSeconds,
      issuer_url: config.tls.issuerUrl ?? null,
      issuer_wait_ms: config.tls.issuerWaitMs,
      ocsp: { timeout_ms: config.tls.ocsp.fetchTimeoutMs, failure_ttl_s: config.tls.ocsp.failureTtlSeconds },
    },
    routing: {
      record_ttl: config.routing.recordTtlSeconds,
      negative_ttl: config.routing.negativeTtlSeconds,
      lru_size: config.routing.lruSize,
    },
    caches: {
      purge_ttl_s: config.caches.purgeTtlSeconds,
      purge_lru_size: config.caches.purgeLruSize,
      resurrect_ttl_s: config.caches.resurrectSeconds,
      lock_wait_ms: config.caches.lockWaitMs,
      invalidation_interval_ms: config.caches.invalidationIntervalMs,
      metrics_flush_ms: config.caches.metricsFlushMs,
    },
    cache: {
      status_name: config.cache.statusName,
      default_ttl: config.cache.defaultTtlSeconds,
      heuristic_percent: config.cache.heuristicPercent,
      heuristic_max_s: config.cache.heuristicMaxSeconds,
      memory_max_bytes: config.cache.memoryMaxObjectBytes,
      memory_max_ttl: config.cache.memoryMaxTtlSeconds,
    },
    compression: { brotli: config.compression.enabled && config.compression.brotli },
    origins: {
      allow_networks: config.origins.allowNetworks,
      deny_networks: config.origins.denyNetworks,
      own_ports: ownPorts(config),
      resolvers: config.routing.resolvers,
      dns_timeout_ms: config.origins.dnsTimeoutMs,
      dns_valid_s: config.routing.resolverValidSeconds,
    },
    acme: { thumbprint: config.acme.accountThumbprint ?? null },
    tickets: {
      enabled: config.tls.sessionTickets.enabled,
      dir: ticketKeyDir(config),
      epoch_s: config.tls.sessionTickets.epochSeconds,
      per_handshake: config.tls.sessionTickets.perHandshake,
    },
    limits: { purge_body_bytes: config.limits.purgeBodyBytes },
  };
}

/** lua-resty-auto-ssl's working directory (dehydrated's config, accounts and certificates). */
export function autoSslDir(config: EdgeConfig): string {
  return `${config.paths.runDir}/auto-ssl`;
}

/** Ports of the edge's task that an origin may never point at (see edge/origin_guard.lua). */
function ownPorts(config: EdgeConfig): number[] {
  const ports = [
    config.listen.httpPort,
    config.listen.httpsPort,
    config.listen.controlPort,
    config.redis.port,
    ...config.origins.deniedPorts,
  ];
  if (config.tls.issuerUrl) {
    const url = new URL(config.tls.issuerUrl);
    ports.push(Number(url.port || (url.protocol === 'https:' ? 443 : 80)));
  }
  if (config.tls.engine === 'auto-ssl') ports.push(config.tls.autoSsl.hookServerPort); // lua-resty-auto-ssl's hook server
  return [...new Set(ports)].sort((a, b) => a - b);
}

function view(config: EdgeConfig) {
  const { paths, listen, nginx, sharedDicts, cache, timeouts, limits, routing, tls } = config;
  const luaJson = JSON.stringify(luaRuntimeConfig(config));
  // A Lua long bracket ends at `]==]`; JSON never contains it unless a value does, which validation forbids.
  if (luaJson.includes(']==]')) throw new Error('config contains the sequence "]==]"');
  return {
    loadModules: nginx.loadModules,
    workerProcesses: String(nginx.workerProcesses),
    daemon: nginx.daemon ? 'on' : 'off',
    errorLogLevel: nginx.errorLogLevel,
    workerConnections: nginx.workerConnections,
    workerRlimitNofile: nginx.workerRlimitNofile ?? false,
    shutdownTimeoutSeconds: nginx.shutdownTimeoutSeconds,
    runDir: paths.runDir,
    errorLog: paths.errorLog,
    accessLog: paths.accessLog,
    accessLogBuffer: nginx.accessLogBuffer,
    cacheDir: paths.cacheDir,
    fallbackCert: paths.fallbackCert,
    fallbackKey: paths.fallbackKey,
    originCaBundle: paths.originCaBundle,
    forwardRequestHeaders: config.origins.forwardRequestHeaders.map((name) => ({
      name,
      variable: `http_${name.toLowerCase().replaceAll('-', '_')}`,
    })),
    luaPackagePath: [`${paths.luaDir}/?.lua`, ...paths.luaPackagePath, ';'].join(';'),
    // `;;` appends Lua's default path; without it an empty list would leave lua-cjson unreachable.
    luaPackageCpath: [...paths.luaPackageCpath, ';'].join(';').replace(/^;$/, ';;'),
    region: config.region,
    listenAddress: listen.address,
    httpPort: listen.httpPort,
    httpsPort: listen.httpsPort,
    controlAddress: listen.controlAddress,
    controlPort: listen.controlPort,
    proxyProtocol: listen.proxyProtocol,
    proxyProtocolFlag: listen.proxyProtocol ? ' proxy_protocol' : '',
    trustedProxies: listen.trustedProxies,
    shmCerts: sharedDicts.certs,
    shmRoutes: sharedDicts.routes,
    shmPurge: sharedDicts.purge,
    shmMetrics: sharedDicts.metrics,
    shmLocks: sharedDicts.locks,
    shmObjects: sharedDicts.objects,
    shmSslSessions: sharedDicts.sslSessions,
    shmNegative: sharedDicts.negative,
    shmOcsp: sharedDicts.ocsp,
    shmStaleIfError: sharedDicts.staleIfError,
    perIpZone: limits.perIpZone,
    connectionsPerIp: limits.connectionsPerIp || null,
    requestsPerSecondPerIp: limits.requestsPerSecondPerIp || null,
    requestBurstPerIp: limits.requestBurstPerIp,
    cacheKeysZone: cache.keysZone,
    cacheMaxSize: cache.maxSize,
    cacheInactiveSeconds: cache.inactiveSeconds,
    cacheLockTimeoutMs: cache.lockTimeoutMs,
    clientHeaderMs: timeouts.clientHeaderMs,
    clientBodyMs: timeouts.clientBodyMs,
    keepaliveSeconds: timeouts.keepaliveSeconds,
    originConnectMs: timeouts.originConnectMs,
    originSendMs: timeouts.originSendMs,
    originReadMs: timeouts.originReadMs,
    // The cached location waits for the fill hop's whole origin exchange.
    fillReadMs: timeouts.originConnectMs + timeouts.originSendMs + timeouts.originReadMs + 1000,
    clientMaxBody: limits.clientMaxBody,
    headerBuffers: limits.headerBuffers,
    headerBufferSize: limits.headerBufferSize,
    purgeBodyBytes: limits.purgeBodyBytes,
    resolvers: routing.resolvers.join(' '),
    resolverValidSeconds: routing.resolverValidSeconds,
    sessionTimeoutSeconds: tls.sessionTimeoutSeconds,
    sessionTickets: tls.sessionTickets.enabled,
    ticketKeyDir: ticketKeyDir(config),
    compression: config.compression.enabled,
    brotli: config.compression.enabled && config.compression.brotli,
    gzipLevel: config.compression.gzipLevel,
    brotliLevel: config.compression.brotliLevel,
    compressMinLength: config.compression.minLengthBytes,
    compressTypes: config.compression.types.join(' '),
    ecdhCurve: `${tls.postQuantum ? 'X25519MLKEM768:' : ''}X25519:prime256v1:secp384r1`,
    // The TLS engine seam: exactly one of these sections renders.
    nativeTls: tls.engine === 'native',
    autoSsl: tls.engine === 'auto-ssl',
    autoSslDir: autoSslDir(config),
    autoSslCa: tls.autoSsl.ca,
    autoSslHookPort: tls.autoSsl.hookServerPort,
    autoSslRenewCheckSeconds: tls.autoSsl.renewCheckIntervalSeconds,
    redisHost: config.redis.host,
    redisPort: config.redis.port,
    redisPrefix: config.redis.prefix,
    luaConfigJson: luaJson,
  };
}

/** Renders the one nginx.conf template; the image and the tests both use this. */
export function renderNginxConf(
  config: EdgeConfig,
  template = readFileSync(NGINX_TEMPLATE_PATH, 'utf8'),
): string {
  // HTML escaping is meaningless for nginx.conf; values are validated by the schema instead.
  return Mustache.render(template, view(config), {}, { escape: (s: string) => String(s) });
}

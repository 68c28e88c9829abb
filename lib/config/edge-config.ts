import { z } from 'zod';

/**
 * Runtime configuration of one edge (one nginx with its Lua, in a task or on a laptop).
 * Everything the nginx.conf template needs is here; nothing in the template is hard-coded.
 * Secrets (the control token, the Redis password) are not part of it: nginx reads them from
 * its environment so they never land in a rendered file.
 */

const hostname = z
  .string()
  .min(1)
  .max(253)
  .regex(/^(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+$/, 'must be a lowercase DNS name');

const port = z.number().int().min(1).max(65535);

/** Loopback, RFC 1918 or shared (100.64/10) address space: never reachable from the internet. */
function isPrivateIpv4(ip: string): boolean {
  const [a = -1, b = -1] = ip.split('.').map(Number);
  return (
    a === 127 ||
    a === 10 ||
    (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168) ||
    (a === 100 && b >= 64 && b <= 127)
  );
}
const ipv4 = z.string().regex(/^(\d{1,3}\.){3}\d{1,3}$/, 'must be an IPv4 address');
/** An IPv4 or IPv6 address with an optional prefix length; edge/ip.lua checks it fully at start. */
const cidr = z
  .string()
  .regex(/^([0-9.]+|[0-9a-f:.]+)(\/\d{1,3})?$/i, 'must be an IP address or CIDR such as 10.0.0.0/16');
/** nginx size syntax: 512k, 64m, 1g */
const size = z.string().regex(/^\d+[kmg]?$/i, 'must be an nginx size such as 64m');
const seconds = z.number().int().min(0);
const positiveSeconds = z.number().int().min(1);
const milliseconds = z.number().int().min(1);

/** dehydrated's default CA, made explicit so the account directory (named after it) is known. */
export const LETS_ENCRYPT_DIRECTORY = 'https://acme-v02.api.letsencrypt.org/directory';

export const edgeConfigSchema = z
  .object({
    /** Region name, reported in logs, metrics and the Cache-Status header. */
    region: z
      .string()
      .regex(/^[a-z0-9-]{1,32}$/)
      .default('local'),
    /** The platform domain: `<tenant>.<platformDomain>` and `<platformDomain>/<tenant>/`. */
    platformDomain: hostname,
    listen: z
      .object({
        address: ipv4.default('0.0.0.0'),
        httpPort: port.default(80),
        httpsPort: port.default(443),
        /** Control listener (purge, health, metrics): loopback or a VPC address only, never public. */
        controlAddress: ipv4
          .refine(
            isPrivateIpv4,
            'must be a loopback or private (VPC) address, never a public or wildcard one',
          )
          .default('127.0.0.1'),
        controlPort: port.default(9145),
        /** Behind an AWS NLB with proxy protocol v2: take the client address from it. */
        proxyProtocol: z.boolean().default(false),
        /** Networks allowed to send proxy protocol headers (the VPC CIDR). */
        trustedProxies: z.array(z.string()).default([]),
      })
      .prefault({}),
    paths: z.object({
      /** nginx prefix: pid, temp directories and logs live here. */
      runDir: z.string().min(1),
      /** Directory holding the project's `edge/*.lua` modules. */
      luaDir: z.string().min(1),
      /** Extra `lua_package_path` entries (Debian puts lua-resty-* under /usr/share/lua/5.1). */
      luaPackagePath: z.array(z.string()).default([]),
      luaPackageCpath: z.array(z.string()).default([]),
      cacheDir: z.string().min(1),
      fallbackCert: z.string().min(1),
      fallbackKey: z.string().min(1),
      /** CA bundle that HTTPS origins are verified against. */
      originCaBundle: z.string().min(1).default('/etc/ssl/certs/ca-certificates.crt'),
      errorLog: z.string().min(1),
      accessLog: z.string().min(1),
    }),
    nginx: z
      .object({
        /** `load_module` lines; empty for OpenResty, the Lua module paths for Debian's nginx. */
        loadModules: z.array(z.string()).default([]),
        workerProcesses: z.union([z.literal('auto'), z.number().int().min(1)]).default('auto'),
        workerConnections: z.number().int().min(64).default(4096),
        /** `worker_rlimit_nofile`: open files per worker (at least its connections). Default: the OS limit. */
        workerRlimitNofile: z.number().int().min(1024).optional(),
        /** `worker_shutdown_timeout`: on SIGQUIT, connections still open after this are closed. */
        shutdownTimeoutSeconds: positiveSeconds.default(20),
        errorLogLevel: z.enum(['debug', 'info', 'notice', 'warn', 'error']).default('warn'),
        daemon: z.boolean().default(false),
        /** Access log lines are written in batches of this size (or every second). */
        accessLogBuffer: size.default('64k'),
      })
      .prefault({}),
    sharedDicts: z
      .object({
        certs: size.default('64m'),
        routes: size.default('16m'),
        purge: size.default('8m'),
        metrics: size.default('8m'),
        locks: size.default('1m'),
        /** The memory tier of small cached responses. */
        objects: size.default('128m'),
        sslSessions: size.default('20m'),
        /**
         * Negative answers (unknown SNI and Host), each for its miss TTL. Kept apart so a flood of
         * unknown names evicts only other negative answers, never the known certificates and
         * records that serve during a Redis outage.
         */
        negative: size.default('10m'),
        /** OCSP responses stapled for certificates that name a responder (edge/ocsp.lua). */
        ocsp: size.default('8m'),
        /**
         * Until when each cached URL may be served stale on an origin's 5xx (stale-if-error), as the
         * fill hop saw it (edge/fill.lua). An evicted entry only means the origin's 5xx is passed on.
         */
        staleIfError: size.default('16m'),
      })
      .prefault({}),
    cache: z
      .object({
        keysZone: size.default('64m'),
        maxSize: size.default('1g'),
        /** Entries not requested for this long are evicted (and no longer available as stale). */
        inactiveSeconds: positiveSeconds.default(7 * 24 * 3600),
        /**
         * Freshness for responses with no Cache-Control/Expires freshness and no Last-Modified,
         * when a tenant sets none (the response's Age counts against it). 0: such responses are
         * stored only when they carry a validator, and then revalidated on every use.
         */
        defaultTtlSeconds: seconds.default(0),
        /** Heuristic freshness (RFC 9111 §4.2.2): this percentage of the time since Last-Modified, */
        heuristicPercent: z.number().int().min(0).max(100).default(10),
        /** capped here; a tenant may set a lower cap, never a higher one. */
        heuristicMaxSeconds: seconds.default(86400),
        lockTimeoutMs: milliseconds.default(5000),
        /** Responses up to this size are also kept in memory while fresh; 0 turns the memory tier off. */
        memoryMaxObjectBytes: z.number().int().min(0).max(1048576).default(65536),
        /** The longest a copy stays in memory, whatever its freshness. */
        memoryMaxTtlSeconds: seconds.default(300),
        /** Name used in the Cache-Status header (RFC 9211). */
        statusName: z
          .string()
          .regex(/^[a-z0-9-]+$/)
          .default('edge'),
      })
      .prefault({}),
    timeouts: z
      .object({
        originConnectMs: milliseconds.default(3000),
        originSendMs: milliseconds.default(10000),
        originReadMs: milliseconds.default(15000),
        clientHeaderMs: milliseconds.default(10000),
        clientBodyMs: milliseconds.default(10000),
        keepaliveSeconds: positiveSeconds.default(65),
        redisMs: milliseconds.default(500),
      })
      .prefault({}),
    limits: z
      .object({
        clientMaxBody: size.default('1m'),
        /** `large_client_header_buffers`: count and size; larger headers get 400/431. */
        headerBuffers: z.number().int().min(1).default(4),
        headerBufferSize: size.default('8k'),
        purgeBodyBytes: z.number().int().min(256).default(16384),
        /** Concurrent requests per client address (`limit_conn`, HTTP/2 streams count); 0: no limit. */
        connectionsPerIp: z.number().int().min(0).default(256),
        /** Sustained requests per second per client address (`limit_req`); 0: no limit. */
        requestsPerSecondPerIp: z.number().int().min(0).default(200),
        /** Requests above the rate a client address may send in a burst before getting 429. */
        requestBurstPerIp: z.number().int().min(0).default(1000),
        /** Shared memory for the per-address counters of each limit (about 16k addresses per MB). */
        perIpZone: size.default('20m'),
      })
      .prefault({}),
    redis: z
      .object({
        host: z.string().min(1).default('127.0.0.1'),
        port: port.default(6379),
        /** Key prefix shared with lua-resty-auto-ssl: `<prefix>:<domain>:latest`. */
        prefix: z
          .string()
          .regex(/^[a-z0-9_-]+$/i)
          .default('edge'),
        poolSize: z.number().int().min(1).default(64),
      })
      .prefault({}),
    tls: z
      .object({
        engine: z.enum(['native', 'auto-ssl']).default('native'),
        /** Parsed certificates kept per worker. */
        lruSize: z.number().int().min(16).default(2000),
        /**
         * How long a certificate read from Redis on use is served from the edge's caches before
         * Redis is read again: with `pushCertificates` off, or while its watch is down, a
         * certificate written to Redis by any path is served within this (POST /certs/forget at
         * once). It is parsed again only when the stored JSON changed.
         */
        shmTtlSeconds: positiveSeconds.default(60),
        /**
         * Native engine: worker 0 watches Redis's keyspace notifications and puts every
         * certificate into the `certs` shared dict as it is written (and all of them at start),
         * so a name's first handshake in a worker reads no Redis (edge/cert_push.lua). Pushed
         * copies stay fresh while the watch is subscribed; a full dict refuses, never evicts.
         */
        pushCertificates: z.boolean().default(true),
        /** How long a name with no certificate is remembered as such. */
        missTtlSeconds: positiveSeconds.default(10),
        /** Fallback handshakes are logged one line per worker per this interval, with their count. */
        fallbackLogIntervalSeconds: positiveSeconds.default(10),
        /** `ssl_session_timeout`: a session (cache entry or ticket) resumes for at most this long. */
        sessionTimeoutSeconds: positiveSeconds.default(3600),
        /**
         * Session tickets whose keys every task of the region derives from one region secret
         * (lib/edge/ticket-keys.ts), so a returning visitor resumes on whichever task the NLB picks.
         * Keys change every epoch; a key encrypts in its epoch and decrypts from the epoch before
         * (clock skew between tasks) to the one after (tickets issued at the end of its epoch).
         */
        sessionTickets: z
          .object({
            /** Off: `ssl_session_tickets off`, the shared session cache alone (per task). */
            enabled: z.boolean().default(true),
            /** Length of a key's epoch; at least `sessionTimeoutSeconds` (see the check below). */
            epochSeconds: positiveSeconds.default(3600),
            /**
             * Keys written at start, in epochs (default 30 days of hourly keys). A task older than
             * this keeps its last key and logs `session ticket keys not rotated` at error level.
             */
            horizonEpochs: z.number().int().min(3).max(100_000).default(720),
            /**
             * TLS 1.3 tickets sent after each full handshake. One (as Go's crypto/tls, Caddy's
             * stack, sends): a returning visitor needs one, an HTTP/2 client opens one connection
             * per origin, and each ticket costs an encryption in nginx's ticket-key callback.
             * OpenSSL's default is 2.
             */
            perHandshake: z.number().int().min(1).max(8).default(1),
          })
          .prefault({}),
        /**
         * Offer the hybrid post-quantum group X25519MLKEM768 first (`ssl_ecdh_curve`). Needs
         * OpenSSL 3.5 (the trixie image); nginx refuses to start on an older one. Default: off,
         * classical X25519:prime256v1:secp384r1 only; the local runner turns it on when its
         * nginx's OpenSSL has the group.
         */
        postQuantum: z.boolean().default(false),
        /**
         * OCSP stapling for certificates whose chain names a responder (edge/ocsp.lua); fetched in
         * the background, never during a handshake.
         */
        ocsp: z
          .object({
            /** Each of connect, send and read to the OCSP responder. */
            fetchTimeoutMs: milliseconds.default(5000),
            /** After a failed fetch, no new attempt for the certificate for this long. */
            failureTtlSeconds: positiveSeconds.default(60),
          })
          .prefault({}),
        /** The issuer sidecar, asked on a miss for an allowed domain (native engine). */
        issuerUrl: z.url().optional(),
        /**
         * How long a first handshake waits for issuance (the issuer, or lua-resty-auto-ssl's
         * dehydrated) before serving the fallback; issuance goes on in the background. Below
         * `timeouts.clientHeaderMs`, which nginx applies to the handshake.
         */
        issuerWaitMs: milliseconds.default(5000),
        /** lua-resty-auto-ssl's options (EDGE_TLS_ENGINE=auto-ssl); docs/auto-ssl.md. */
        autoSsl: z
          .object({
            /** The ACME directory dehydrated orders from. Default: Let's Encrypt production. */
            ca: z.url().default(LETS_ENCRYPT_DIRECTORY),
            /**
             * CA certificates dehydrated's curl trusts when it talks to `ca` (a private or test
             * CA such as Pebble). Default: the system's.
             */
            caBundle: z
              .string()
              .regex(/^[^\s'"]+$/, 'must be a path without spaces or quotes')
              .optional(),
            /** Loopback port of auto-ssl's hook server; distinct per edge on one host. */
            hookServerPort: port.default(8999),
            /** How often auto-ssl looks for certificates to renew. */
            renewCheckIntervalSeconds: positiveSeconds.default(86400),
          })
          .prefault({}),
      })
      .prefault({}),
    routing: z
      .object({
        /**
         * How long a tenant or domain record is cached in the edge before Redis is asked again: a
         * record written to Redis by any path (event, bootstrap, by hand) is served within this.
         */
        recordTtlSeconds: positiveSeconds.default(5),
        /** Tenant and domain records kept per worker. */
        lruSize: z.number().int().min(16).default(20000),
        /** How long an unknown host is remembered as unknown. */
        negativeTtlSeconds: positiveSeconds.default(5),
        /** DNS resolvers for origin hostnames (the VPC resolver on AWS). */
        resolvers: z.array(z.string()).default(['127.0.0.1']),
        resolverValidSeconds: positiveSeconds.default(30),
      })
      .prefault({}),
    /**
     * The edge's tiered caches (edge/tiered_cache.lua): each worker's LRU, a shared dict, then
     * Redis. Certificates and records take their TTLs from `tls` and `routing`.
     */
    caches: z
      .object({
        /**
         * How long a tenant's purge generations are used before Redis is read again: a purge that
         * reached Redis by any path (another edge, a bootstrap, by hand) is honoured within this.
         * Purges on this edge's control route reach its workers at once.
         */
        purgeTtlSeconds: positiveSeconds.default(2),
        /** Tenants' purge states kept per worker. */
        purgeLruSize: z.number().int().min(16).default(10000),
        /**
         * When Redis fails, a known copy is served for this long before Redis is tried again; the
         * copy itself is kept for as long as the outage lasts.
         */
        resurrectSeconds: positiveSeconds.default(5),
        /** How long a lookup waits for another worker loading the same key before loading it itself. */
        lockWaitMs: milliseconds.default(1000),
        /**
         * An explicit certificate change (POST /certs/forget: a renewal, a revocation) reaches every
         * worker's parsed copy within this: each worker reads a change counter on a timer, so a
         * handshake served from the worker's LRU reads nothing shared. /certs/forget answers once
         * every worker has applied the change.
         */
        invalidationIntervalMs: milliseconds.default(200),
        /**
         * Counters (handshakes, lookups, requests) are kept per worker and added to the shared dict
         * this often, not on every event; /metrics waits for every worker's next flush.
         */
        metricsFlushMs: milliseconds.default(250),
      })
      .prefault({}),
    /**
     * Compression on the way out, for text types: gzip always, brotli where its module is loaded.
     * Accept-Encoding is normalised (edge/encoding.lua) so variants stay few, origins are asked
     * for gzip at most, and gunzip serves clients that take no gzip.
     */
    compression: z
      .object({
        enabled: z.boolean().default(true),
        /** Needs ngx_http_brotli_filter_module (in the trixie image; not in OpenResty's). */
        brotli: z.boolean().default(false),
        gzipLevel: z.number().int().min(1).max(9).default(5),
        brotliLevel: z.number().int().min(0).max(11).default(5),
        /** Smaller responses go out as they are. */
        minLengthBytes: z.number().int().min(0).default(256),
        /** MIME types compressed besides text/html (which always is). */
        types: z
          .array(z.string().regex(/^[a-z0-9.+-]+\/[a-z0-9.+*-]+$/))
          .default([
            'text/plain',
            'text/css',
            'text/javascript',
            'text/xml',
            'text/markdown',
            'application/javascript',
            'application/json',
            'application/manifest+json',
            'application/xml',
            'application/rss+xml',
            'application/atom+xml',
            'application/wasm',
            'image/svg+xml',
            'font/ttf',
            'font/otf',
          ]),
      })
      .prefault({}),
    /**
     * Which addresses a tenant's origin may have. Origin host names are resolved by the edge and
     * the checked address is the one connected to. Non-public addresses (loopback, private,
     * shared, link-local with the metadata endpoints, unique-local, reserved, IPv6 forms that
     * embed IPv4) are refused unless listed in `allowNetworks`; the edge's own ports (listeners,
     * control, Redis, issuer, `deniedPorts`) are refused on them even then.
     */
    origins: z
      .object({
        /** CIDRs of non-public origins the operator allows. Default: none. */
        allowNetworks: z.array(cidr).default([]),
        /** Further ranges refused, e.g. a VPC that uses public address space. Default: none. */
        denyNetworks: z.array(cidr).default([]),
        /** Other ports of the task (sidecar health ports), refused on allowed non-public addresses. */
        deniedPorts: z.array(port).default([]),
        /** How long one DNS query for an origin host name may take. */
        dnsTimeoutMs: milliseconds.default(2000),
        /** Request headers passed to origins besides the built-in allow list. Default: none. */
        forwardRequestHeaders: z
          .array(z.string().regex(/^[A-Za-z][A-Za-z0-9-]{0,63}$/, 'a header name'))
          .default([]),
      })
      .prefault({}),
    acme: z
      .object({
        /** JWK thumbprint of the deployment's ACME account: enables stateless HTTP-01 answers. */
        accountThumbprint: z
          .string()
          .regex(/^[A-Za-z0-9_-]{43}$/)
          .optional(),
      })
      .prefault({}),
  })
  .strict()
  .superRefine((c, ctx) => checkNginx(c, ctx));

function checkNginx(
  c: {
    nginx: { workerConnections: number; workerRlimitNofile?: number | undefined };
    tls: {
      issuerWaitMs: number;
      sessionTimeoutSeconds: number;
      sessionTickets: { enabled: boolean; epochSeconds: number };
    };
    timeouts: { clientHeaderMs: number };
  },
  ctx: z.RefinementCtx,
) {
  // nginx times the handshake with client_header_timeout: a longer wait drops the connection
  // instead of serving the fallback certificate.
  if (c.tls.issuerWaitMs >= c.timeouts.clientHeaderMs) {
    ctx.addIssue({
      code: 'custom',
      path: ['tls', 'issuerWaitMs'],
      message: `${c.tls.issuerWaitMs} is not below timeouts.clientHeaderMs ${c.timeouts.clientHeaderMs}: nginx would drop the handshake before the fallback certificate is served`,
    });
  }
  // A ticket issued at the end of epoch N is decrypted with key N until it expires; key N is kept
  // for one epoch after its own, so the ticket must expire within one epoch.
  const { sessionTickets, sessionTimeoutSeconds } = c.tls;
  if (sessionTickets.enabled && sessionTickets.epochSeconds < sessionTimeoutSeconds) {
    ctx.addIssue({
      code: 'custom',
      path: ['tls', 'sessionTickets', 'epochSeconds'],
      message: `${sessionTickets.epochSeconds} is below tls.sessionTimeoutSeconds ${sessionTimeoutSeconds}: tickets would outlive the keys that decrypt them`,
    });
  }
  const { workerConnections, workerRlimitNofile } = c.nginx;
  if (workerRlimitNofile !== undefined && workerRlimitNofile < workerConnections) {
    ctx.addIssue({
      code: 'custom',
      path: ['nginx', 'workerRlimitNofile'],
      message: `${workerRlimitNofile} is below workerConnections ${workerConnections}: every connection is an open file`,
    });
  }
}

export type EdgeConfigInput = z.input<typeof edgeConfigSchema>;
export type EdgeConfig = Readonly<z.output<typeof edgeConfigSchema>>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Validates once at start; the result is frozen so nothing changes it later. */
export function parseEdgeConfig(input: unknown): EdgeConfig {
  const result = edgeConfigSchema.safeParse(input);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ConfigError(`invalid edge config:\n${lines.join('\n')}`);
  }
  return Object.freeze(result.data);
}

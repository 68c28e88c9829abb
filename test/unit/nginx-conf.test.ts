import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import type { EdgeConfigInput } from '../../lib/config/edge-config.ts';
import { renderNginxConf } from '../../lib/edge/nginx-conf.ts';
import { detectNginxRuntime } from '../../lib/edge/nginx-runtime.ts';
import { localEdgeConfig, prepareEdge } from '../../lib/local/edge-server.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const variants: [string, Omit<EdgeConfigInput, 'paths'>][] = [
  ['defaults', { platformDomain: 'platform.example' }],
  [
    'behind an NLB with proxy protocol',
    {
      platformDomain: 'platform.example',
      listen: { proxyProtocol: true, trustedProxies: ['10.0.0.0/16'], httpPort: 8080, httpsPort: 8443 },
    },
  ],
  [
    'small shared dicts, fixed workers, custom timeouts and cache',
    {
      platformDomain: 'saas.example.org',
      nginx: { workerProcesses: 3, workerConnections: 1024, errorLogLevel: 'info' },
      sharedDicts: {
        certs: '2m',
        routes: '1m',
        purge: '1m',
        metrics: '1m',
        locks: '128k',
        sslSessions: '1m',
      },
      cache: {
        keysZone: '8m',
        maxSize: '256m',
        inactiveSeconds: 3600,
        defaultTtlSeconds: 0,
        statusName: 'cdn-eu',
      },
      timeouts: { originConnectMs: 100, originReadMs: 100, redisMs: 50 },
      limits: { clientMaxBody: '10m', headerBuffers: 8, headerBufferSize: '16k', purgeBodyBytes: 4096 },
      routing: { resolvers: ['169.254.169.253', '10.0.0.2'] },
      caches: { purgeTtlSeconds: 3, purgeLruSize: 500, resurrectSeconds: 7, lockWaitMs: 250 },
    },
  ],
  [
    'stateless ACME challenges and an issuer',
    {
      platformDomain: 'platform.example',
      acme: { accountThumbprint: 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs' },
      tls: { issuerUrl: 'http://127.0.0.1:9200', issuerWaitMs: 3000 },
    },
  ],
];

describe('nginx.conf template', () => {
  it.each(variants)('renders a config that passes nginx -t: %s', async (_name, input) => {
    const dir = mkdtempSync(join(tmpdir(), 'edge-conf-'));
    dirs.push(dir);
    const config = localEdgeConfig({ dir, controlToken: 't'.repeat(32), config: input });
    await expect(
      prepareEdge(config, { ...process.env, EDGE_CONTROL_TOKEN: 't'.repeat(32) }),
    ).resolves.toMatch(/nginx\.conf$/);
  });

  it('carries every parameter into the output', () => {
    const config = localEdgeConfig({
      dir: '/srv/edge',
      controlToken: 'x',
      config: variants[2]?.[1] as never,
    });
    const conf = renderNginxConf(config);
    for (const line of [
      'worker_processes 3;',
      'worker_connections 1024;',
      'lua_shared_dict edge_certs 2m;',
      'lua_shared_dict edge_locks 128k;',
      'ssl_session_cache shared:edge_ssl:1m;',
      'keys_zone=edge_cache:8m',
      'max_size=256m inactive=3600s',
      'proxy_connect_timeout 100ms;',
      'client_max_body_size 10m;',
      'large_client_header_buffers 8 16k;',
      'client_max_body_size 4096;',
      'resolver 169.254.169.253 10.0.0.2 valid=30s ipv6=off;',
      'proxy_cache_valid 200 203 204 300 301 308 404 405 410 414 501 1s;',
    ]) {
      expect(conf).toContain(line);
    }
    expect(conf).toContain('"status_name":"cdn-eu"');
    expect(conf).toContain(
      '"caches":{"purge_ttl_s":3,"purge_lru_size":500,"resurrect_ttl_s":7,"lock_wait_ms":250,' +
        '"invalidation_interval_ms":200,"metrics_flush_ms":250}',
    );
  });

  it('never writes the control token into the file', () => {
    const config = localEdgeConfig({
      dir: '/srv/edge',
      controlToken: 'SECRET-TOKEN-VALUE',
      config: variants[0]?.[1] as never,
    });
    expect(renderNginxConf(config)).not.toContain('SECRET-TOKEN-VALUE');
  });

  it('listens with proxy_protocol and trusts only the given networks when behind an NLB', () => {
    const config = localEdgeConfig({
      dir: '/srv/edge',
      controlToken: 'x',
      config: variants[1]?.[1] as never,
    });
    const conf = renderNginxConf(config);
    expect(conf).toContain('listen 0.0.0.0:8443 ssl http2 default_server proxy_protocol;');
    expect(conf).toContain('listen 0.0.0.0:8080 default_server proxy_protocol;');
    expect(conf).toContain('set_real_ip_from 10.0.0.0/16;');
    expect(conf).toContain('real_ip_header proxy_protocol;');
  });

  it('refuses to start nginx without a control token', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edge-conf-'));
    dirs.push(dir);
    const config = localEdgeConfig({ dir, controlToken: '', config: variants[0]?.[1] as never });
    const env = { ...process.env };
    delete env.EDGE_CONTROL_TOKEN;
    // nginx -t does not run init_by_lua; the check happens when nginx really starts.
    const confPath = await prepareEdge(config, env);
    const start = promisify(execFile)(detectNginxRuntime().binary, ['-p', dir, '-c', confPath], {
      env,
      timeout: 10_000,
    });
    await expect(start).rejects.toThrow(/EDGE_CONTROL_TOKEN must be set to at least 32 characters/);
  });
});

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parseEdgeConfig } from '../../lib/config/edge-config.ts';
import { renderNginxConf } from '../../lib/edge/nginx-conf.ts';
import { detectNginxRuntime } from '../../lib/edge/nginx-runtime.ts';
import { taskEdgeConfig } from '../../lib/infra/task-edge-config.ts';
import { startEdge } from '../../lib/local/edge-server.ts';
import { freePort } from '../../lib/local/ports.ts';

const STUB_DIR = fileURLToPath(new URL('./lua', import.meta.url));
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const task = (engine: 'native' | 'auto-ssl') =>
  taskEdgeConfig({
    region: 'eu-west-1',
    platformDomain: 'platform.example',
    engine,
    redisPrefix: 'certs',
    vpcCidr: '10.40.0.0/16',
    cacheMaxSizeGiB: 44,
    cpuUnits: 1024,
    connectionsPerTask: 5000,
  });

/** The lines of a named block (`server {`, `init_by_lua_block {`) whose first line matches. */
function block(conf: string, opening: RegExp): string {
  const lines = conf.split('\n');
  const start = lines.findIndex((l) => opening.test(l));
  if (start < 0) throw new Error(`no block matching ${opening}`);
  let depth = 0;
  for (let i = start; i < lines.length; i++) {
    depth += (lines[i]?.match(/{/g) ?? []).length - (lines[i]?.match(/}/g) ?? []).length;
    if (depth === 0) return lines.slice(start, i + 1).join('\n');
  }
  throw new Error('unbalanced block');
}

describe('nginx.conf with EDGE_TLS_ENGINE=auto-ssl', () => {
  const conf = renderNginxConf(task('auto-ssl'));

  it('declares the shared dicts lua-resty-auto-ssl needs', () => {
    expect(conf).toContain('    lua_shared_dict auto_ssl 64m;\n');
    expect(conf).toContain('    lua_shared_dict auto_ssl_settings 64k;\n');
  });

  it('creates auto_ssl with the Redis storage adapter on the same Redis and prefix as the native engine', () => {
    const init = block(conf, /^\s*init_by_lua_block \{/);
    expect(init).toContain('auto_ssl = (require "resty.auto-ssl").new()');
    expect(init).toContain('auto_ssl:set("storage_adapter", "resty.auto-ssl.storage_adapters.redis")');
    expect(init).toMatch(
      /auto_ssl:set\("redis", \{\s+host = "127\.0\.0\.1",\s+port = 6379,\s+prefix = "certs",/,
    );
    expect(init).toContain('auto_ssl:set("dir", "/var/run/edge/auto-ssl")');
    expect(init).toContain('return require("edge.auto_ssl").allow_domain(domain)');
    // The project's config loads first; auto_ssl:init() comes last, after every setting.
    expect(init.indexOf('require("edge.init").init(')).toBeLessThan(init.indexOf('auto_ssl = '));
    expect(init.trimEnd().split('\n').at(-2)?.trim()).toBe('auto_ssl:init()');
    expect(block(conf, /^\s*init_worker_by_lua_block \{/)).toContain('auto_ssl:init_worker()');
  });

  it('serves HTTP-01 challenges from auto-ssl on port 80, behind proxy protocol', () => {
    expect(conf).toContain('listen 0.0.0.0:80 default_server proxy_protocol;');
    expect(block(conf, /location \/\.well-known\/acme-challenge\//)).toContain(
      'content_by_lua_block { require("edge.log").protect("challenge", auto_ssl.challenge_server, auto_ssl) }',
    );
    expect(conf).not.toContain('require("edge.challenge")');
  });

  it('picks certificates through edge.auto_ssl on 443 (issuance in the background)', () => {
    expect(conf).toContain(
      '        ssl_certificate_by_lua_block { require("edge.auto_ssl").certificate(auto_ssl) }\n',
    );
    expect(conf).not.toContain('require("edge.tls").certificate()');
  });

  it('runs the hook server on 127.0.0.1:8999 with 128k bodies', () => {
    const server = block(conf.slice(conf.indexOf("# lua-resty-auto-ssl's hook server")), /^\s*server \{$/);
    expect(server).toContain('listen 127.0.0.1:8999;');
    expect(server).toMatch(/client_body_buffer_size 128k;\s+client_max_body_size 128k;/);
    expect(server).toContain('content_by_lua_block { auto_ssl:hook_server() }');
  });

  // lua-resty-auto-ssl cannot be installed here, and Debian's Lua module skips init_by_lua under
  // `nginx -t`; so nginx really starts, with a stand-in whose init() checks the settings it got.
  it('starts nginx with a stand-in resty.auto-ssl that checks its settings', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edge-auto-ssl-'));
    dirs.push(dir);
    const runtime = detectNginxRuntime();
    const [httpPort, httpsPort, controlPort] = await Promise.all([freePort(), freePort(), freePort()]);
    const edge = await startEdge({
      dir,
      controlToken: 'a-control-token-long-enough-for-the-edge-0123456789',
      config: {
        platformDomain: 'platform.example',
        tls: { engine: 'auto-ssl' },
        listen: { address: '127.0.0.1', httpPort, httpsPort, controlPort },
        paths: { luaPackagePath: [...runtime.luaPackagePath, `${STUB_DIR}/?.lua`] },
      },
    });
    try {
      const log = readFileSync(edge.errorLog, 'utf8');
      expect(log).not.toMatch(/\[(error|crit|alert|emerg)\]/);
    } finally {
      await edge.process.stop();
    }
  });
});

describe('nginx.conf with EDGE_TLS_ENGINE=native', () => {
  const conf = renderNginxConf(task('native'));

  it('has none of the auto-ssl directives', () => {
    expect(conf).not.toMatch(/auto_ssl|8999/);
    expect(conf).toContain('ssl_certificate_by_lua_block { require("edge.tls").certificate() }');
    expect(conf).toContain(
      'content_by_lua_block { require("edge.log").protect("challenge", require("edge.challenge").serve) }',
    );
  });

  it('renders the task config: proxy protocol from the VPC, the VPC resolver, the issuer on loopback', () => {
    expect(conf).toContain('    set_real_ip_from 10.40.0.0/16;\n    real_ip_header proxy_protocol;\n');
    expect(conf).toContain('listen 0.0.0.0:443 ssl http2 default_server proxy_protocol;');
    expect(conf).toContain('resolver 169.254.169.253 valid=30s ipv6=off;');
    expect(conf).toContain('"issuer_url":"http://127.0.0.1:9180"');
    expect(conf).toContain('max_size=44g');
  });

  it('is identical to a config without the engine set at all', () => {
    const { tls, ...rest } = JSON.parse(JSON.stringify(task('native'))) as Record<string, unknown>;
    const { engine: _engine, ...tlsWithoutEngine } = tls as Record<string, unknown>;
    const withoutEngine = parseEdgeConfig({ ...rest, tls: tlsWithoutEngine });
    expect(renderNginxConf(withoutEngine)).toBe(conf);
  });
});

import { describe, expect, it } from 'vitest';
import { parseEdgeConfig } from '../../lib/config/edge-config.ts';
import { luaRuntimeConfig, renderNginxConf } from '../../lib/edge/nginx-conf.ts';

const paths = {
  runDir: '/srv/edge',
  luaDir: '/opt/edge/lua',
  cacheDir: '/srv/edge/cache',
  fallbackCert: '/srv/edge/f.crt',
  fallbackKey: '/srv/edge/f.key',
  errorLog: '/srv/edge/error.log',
  accessLog: '/srv/edge/access.log',
};
const config = (extra: Record<string, unknown> = {}) =>
  parseEdgeConfig({ platformDomain: 'platform.test', paths, ...extra });

describe('security defaults in the rendered nginx.conf', () => {
  it('limits each client address by default, and not at all when set to 0', () => {
    const conf = renderNginxConf(config());
    expect(conf).toContain('limit_conn_zone $binary_remote_addr zone=edge_conn_per_ip:20m;');
    expect(conf).toContain('limit_req_zone $binary_remote_addr zone=edge_req_per_ip:20m rate=200r/s;');
    expect(conf.match(/limit_conn edge_conn_per_ip 256;/g)).toHaveLength(2);
    expect(conf.match(/limit_req zone=edge_req_per_ip burst=1000 nodelay;/g)).toHaveLength(2);
    const off = renderNginxConf(config({ limits: { connectionsPerIp: 0, requestsPerSecondPerIp: 0 } }));
    expect(off).not.toContain('limit_conn');
    expect(off).not.toContain('limit_req');
  });

  it('offers classical groups unless post-quantum is asked for; tickets with the region-derived keys, or off', () => {
    const classical = renderNginxConf(config());
    expect(classical).toContain('ssl_ecdh_curve X25519:prime256v1:secp384r1;');
    expect(classical).toContain('ssl_session_tickets on;');
    // The first key encrypts: it must be the current epoch's.
    expect(classical.match(/ssl_session_ticket_key \S+\/tickets\/(\w+)\.key;/g)).toEqual(
      ['current', 'previous', 'next'].map((n) => `ssl_session_ticket_key /srv/edge/tickets/${n}.key;`),
    );
    const off = renderNginxConf(config({ tls: { sessionTickets: { enabled: false } } }));
    expect(off).toContain('ssl_session_tickets off;');
    expect(off).not.toContain('ssl_session_ticket_key');
    expect(renderNginxConf(config({ tls: { postQuantum: true } }))).toContain(
      'ssl_ecdh_curve X25519MLKEM768:X25519:prime256v1:secp384r1;',
    );
  });

  it('passes only allow-listed headers to origins and ignores X-Accel-* from them', () => {
    const conf = renderNginxConf(config());
    expect(conf).toContain('proxy_pass_request_headers off;');
    expect(conf).toContain('proxy_ignore_headers X-Accel-Redirect X-Accel-Expires X-Accel-Limit-Rate');
    expect(conf).toContain('proxy_hide_header Strict-Transport-Security;');
  });

  it('fills the cache through the fill hop: origins never set X-Accel-*, only the hop sets X-Accel-Expires', () => {
    const conf = renderNginxConf(config());
    const cached = conf.slice(conf.indexOf('proxy_pass http://edge_fill'), conf.indexOf('listen unix:'));
    const fill = conf.slice(conf.indexOf('listen unix:'));
    expect(cached).toContain(
      'proxy_ignore_headers X-Accel-Redirect X-Accel-Limit-Rate X-Accel-Buffering X-Accel-Charset;',
    );
    expect(fill).toContain(
      'proxy_ignore_headers X-Accel-Redirect X-Accel-Expires X-Accel-Limit-Rate X-Accel-Buffering X-Accel-Charset;',
    );
    expect(fill).toContain(
      'header_filter_by_lua_block { require("edge.log").protect("fill", require("edge.fill").header_filter) }',
    );
  });

  it("keeps nginx's own request lines (request line and upstream URL, queries included) out of the error log", () => {
    const conf = renderNginxConf(config());
    const target = /^error_log (\S+) \w+;$/m.exec(conf)?.[1];
    expect(target).toBeTruthy();
    const servers = conf.split(/^ {4}server \{$/m).slice(1);
    const [http, https, fill, control] = servers;
    for (const server of [http, https, fill]) expect(server).toContain(`error_log ${target} crit;`);
    expect(control).not.toContain('error_log');
    // Every Lua request-phase entry runs under edge.log.protect: a runtime error is logged without the request.
    for (const server of [http ?? '', https ?? '', fill ?? '']) {
      const entries =
        server.match(/(access|content|rewrite|header_filter|body_filter)_by_lua_block \{[^\n]*\}/g) ?? [];
      expect(entries.length).toBeGreaterThan(0);
      for (const entry of entries) expect(entry).toContain('require("edge.log").protect(');
    }
    expect(https).toContain('error_page 413 @edge_too_large;');
  });

  it("refuses the task's own ports as origins, issuer included", () => {
    const lua = luaRuntimeConfig(
      config({ tls: { issuerUrl: 'http://127.0.0.1:9180' }, origins: { deniedPorts: [9181] } }),
    );
    expect(lua.origins.own_ports).toEqual([80, 443, 6379, 9145, 9180, 9181]);
    expect(lua.origins.allow_networks).toEqual([]);
  });

  it('refuses an origin allow list entry that is not an address', () => {
    expect(() => config({ origins: { allowNetworks: ['localhost'] } })).toThrow(/allowNetworks/);
  });
});

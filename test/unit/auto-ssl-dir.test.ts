import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LETS_ENCRYPT_DIRECTORY, parseEdgeConfig } from '../../lib/config/edge-config.ts';
import { dehydratedCaHash, prepareAutoSslDir } from '../../lib/edge/auto-ssl-dir.ts';
import { renderNginxConf } from '../../lib/edge/nginx-conf.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function config(runDir: string, tls: Record<string, unknown> = {}, timeouts: Record<string, unknown> = {}) {
  return parseEdgeConfig({
    platformDomain: 'platform.example',
    tls: { engine: 'auto-ssl', ...tls },
    timeouts,
    paths: {
      runDir,
      luaDir: '/opt/edge/lua',
      cacheDir: '/var/cache/edge',
      fallbackCert: '/etc/edge/fallback.crt',
      fallbackKey: '/etc/edge/fallback.key',
      errorLog: 'stderr',
      accessLog: 'off',
    },
  });
}

describe('dehydratedCaHash', () => {
  it('is the directory name dehydrated 0.7 gives Let’s Encrypt production (echo adds a newline)', () => {
    // `echo https://acme-v02.api.letsencrypt.org/directory | openssl base64 -e | tr -d '\n\r' | sed 's/=*$//; y:+/:-_:'`
    expect(dehydratedCaHash(LETS_ENCRYPT_DIRECTORY)).toBe(
      'aHR0cHM6Ly9hY21lLXYwMi5hcGkubGV0c2VuY3J5cHQub3JnL2RpcmVjdG9yeQo',
    );
  });
});

describe('prepareAutoSslDir', () => {
  const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
    type: 'pkcs8',
    format: 'pem',
  }) as string;

  it('places the deployment account key where dehydrated reads it for the configured CA, mode 0600', async () => {
    const runDir = mkdtempSync(join(tmpdir(), 'auto-ssl-dir-'));
    dirs.push(runDir);
    const ca = 'https://127.0.0.1:14000/dir';
    const files = await prepareAutoSslDir(
      config(runDir, { autoSsl: { ca } }),
      JSON.stringify({ privateKeyPem: pem }),
    );
    expect(files.accountKey).toBe(
      join(runDir, 'auto-ssl/letsencrypt/accounts', dehydratedCaHash(ca), 'account_key.pem'),
    );
    expect(readFileSync(files.accountKey as string, 'utf8')).toBe(pem);
    expect(statSync(files.accountKey as string).mode & 0o777).toBe(0o600);
  });

  it('places no key for a placeholder secret, and trusts the CA bundle through a drop-in', async () => {
    const runDir = mkdtempSync(join(tmpdir(), 'auto-ssl-dir-'));
    dirs.push(runDir);
    const files = await prepareAutoSslDir(config(runDir, { autoSsl: { caBundle: '/etc/edge/ca.pem' } }), 'x');
    expect(files.accountKey).toBeUndefined();
    expect(readFileSync(files.dropIn, 'utf8')).toContain(`CURL_OPTS='--cacert /etc/edge/ca.pem'\n`);
  });
});

describe('auto-ssl options from the config', () => {
  it('renders ca, hook server port and renewal interval; the hook port is an own port', () => {
    const conf = renderNginxConf(
      config('/var/run/edge', { autoSsl: { ca: 'https://ca.example/dir', hookServerPort: 9001 } }),
    );
    expect(conf).toContain('auto_ssl:set("ca", "https://ca.example/dir")');
    expect(conf).toContain('auto_ssl:set("hook_server_port", 9001)');
    expect(conf).toContain('auto_ssl:set("renew_check_interval", 86400)');
    expect(conf).toContain('listen 127.0.0.1:9001;');
    expect(conf).toMatch(/"own_ports":\[[^\]]*9001/);
    expect(conf).not.toContain('8999');
  });

  it('defaults the CA to Let’s Encrypt production', () => {
    expect(renderNginxConf(config('/var/run/edge'))).toContain(
      `auto_ssl:set("ca", "${LETS_ENCRYPT_DIRECTORY}")`,
    );
  });

  it('refuses a handshake wait nginx would cut with client_header_timeout', () => {
    expect(() => config('/var/run/edge', { issuerWaitMs: 10000 }, { clientHeaderMs: 10000 })).toThrow(
      'tls.issuerWaitMs: 10000 is not below timeouts.clientHeaderMs 10000: nginx would drop the handshake before the fallback certificate is served',
    );
  });
});

import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { accountThumbprint, renderEdgeFiles } from '../../bin/render-edge-config.ts';
import { taskEdgeConfig } from '../../lib/infra/task-edge-config.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function keyPem(): string {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' })
    .privateKey.export({ type: 'pkcs8', format: 'pem' })
    .toString();
}

describe('the edge-config init container', () => {
  it('takes the thumbprint from a PEM or from JSON with privateKeyPem, and none from the placeholder', () => {
    const pem = keyPem();
    const thumbprint = accountThumbprint(pem);
    expect(thumbprint).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(accountThumbprint(JSON.stringify({ privateKeyPem: pem }))).toBe(thumbprint);
    expect(accountThumbprint('generated-placeholder-value')).toBeUndefined();
    expect(accountThumbprint(undefined)).toBeUndefined();
  });

  it('renders nginx.conf with the thumbprint, the fallback certificate and the writable directories', async () => {
    const root = mkdtempSync(join(tmpdir(), 'edge-render-'));
    dirs.push(root);
    const task = taskEdgeConfig({
      region: 'eu-west-1',
      platformDomain: 'platform.example',
      engine: 'auto-ssl',
      redisPrefix: 'edge',
      vpcCidr: '10.40.0.0/16',
      cacheMaxSizeGiB: 10,
      cpuUnits: 1024,
      connectionsPerTask: 5000,
    });
    // The task's absolute paths, moved under a temporary root.
    const paths = Object.fromEntries(
      Object.entries(task.paths).map(([k, v]) => [
        k,
        typeof v === 'string' && v.startsWith('/') && !v.startsWith('/dev') ? join(root, v) : v,
      ]),
    );
    const pem = keyPem();
    const result = await renderEdgeFiles({
      EDGE_CONFIG: JSON.stringify({ ...task, paths }),
      EDGE_CONF_DIR: join(root, 'etc/edge'),
      EDGE_ACME_ACCOUNT_KEY: pem,
      EDGE_TICKET_SECRET: 's'.repeat(64),
    });
    const conf = readFileSync(result.confPath, 'utf8');
    expect(result.thumbprint).toBe(accountThumbprint(pem));
    expect(conf).toContain(`"thumbprint":"${result.thumbprint}"`);
    expect(conf).toContain('require("edge.auto_ssl").certificate(auto_ssl)');
    expect(readFileSync(join(root, 'etc/edge/fallback.crt'), 'utf8')).toContain('BEGIN CERTIFICATE');
    expect(result.tickets?.dir).toBe(join(root, 'var/run/edge/tickets'));
    expect(readFileSync(join(root, 'var/run/edge/tickets/current.key'))).toHaveLength(80);
    for (const dir of ['var/run/edge/tmp', 'var/run/edge/auto-ssl', 'var/cache/edge']) {
      expect(existsSync(join(root, dir)), dir).toBe(true);
    }
  });

  it('refuses to start without the ticket secret while tickets are on', async () => {
    const root = mkdtempSync(join(tmpdir(), 'edge-render-'));
    dirs.push(root);
    const config = {
      platformDomain: 'platform.example',
      paths: {
        runDir: root,
        luaDir: root,
        cacheDir: root,
        fallbackCert: join(root, 'f.crt'),
        fallbackKey: join(root, 'f.key'),
        errorLog: '/dev/stderr',
        accessLog: '/dev/stdout',
      },
    };
    await expect(
      renderEdgeFiles({ EDGE_CONFIG: JSON.stringify(config), EDGE_CONF_DIR: join(root, 'etc') }),
    ).rejects.toThrow('EDGE_TICKET_SECRET is required while tls.sessionTickets.enabled is true');
  });

  it('refuses to start without EDGE_CONFIG', async () => {
    await expect(renderEdgeFiles({})).rejects.toThrow('EDGE_CONFIG is required but not set');
  });
});

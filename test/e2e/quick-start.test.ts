import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { promisify } from 'node:util';
import { beforeAll, expect, it } from 'vitest';
import { httpsGet } from '../harness/clients.ts';
import { TestBed } from '../harness/testbed.ts';
import { type QuickStart, startQuickStart } from './quick-start-process.ts';

// The README's `npm start` (bin/local-edge.ts, here without the setup step), on free ports.
const bed = new TestBed('quick-start');
let qs: QuickStart;

beforeAll(async () => {
  qs = await startQuickStart(bed);
});

it('serves the demo tenant in its platform forms', async () => {
  const res = await httpsGet({
    port: qs.ports.HTTPS,
    host: 'platform.localhost',
    path: '/demo/about.txt',
  });
  expect(res.status).toBe(200);
  expect(res.body).toBe('about the demo tenant\n');
});

it('issues a certificate from Pebble on the first handshake for the registered custom domain', async () => {
  const root = readFileSync(join(qs.runDir, 'pebble-root.pem'), 'utf8');
  const san = await new Promise<string>((resolve, reject) => {
    const socket = connect({
      host: '127.0.0.1',
      port: qs.ports.HTTPS,
      servername: 'shop.demo.localhost',
      ca: root,
    });
    socket.once('secureConnect', () => {
      resolve(socket.getPeerX509Certificate()?.subjectAltName ?? '');
      socket.destroy();
    });
    socket.once('error', reject);
  });
  expect(san).toContain('DNS:shop.demo.localhost');
});

it('prints the control API address and a curl example that works as printed (SigV4, local key pair)', async () => {
  const url = `http://127.0.0.1:${qs.ports.API}`;
  expect(qs.output()).toContain(`Control API:         ${url} (OpenAPI 3.1 at ${url}/openapi.json)`);
  const example = qs
    .output()
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l.startsWith('curl -s --aws-sigv4'));
  expect(example).toBe(
    `curl -s --aws-sigv4 aws:amz:local:execute-api --user "local:$(cat ${join(qs.runDir, 'api-secret')})" ${url}/tenants`,
  );
  const { stdout } = await promisify(execFile)('bash', ['-c', example as string]);
  expect(JSON.parse(stdout)).toMatchObject({ tenants: [{ id: 'demo', domains: 2 }] });
});

it('stops everything on SIGTERM and exits 0', async () => {
  expect(await qs.stop()).toBe(0);
});

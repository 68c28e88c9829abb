import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ensureTable } from '../../lib/core/table.ts';
import { startDynalite } from '../../lib/local/dynalite.ts';
import { freePort } from '../../lib/local/ports.ts';
import { ManagedProcess } from '../../lib/local/process.ts';
import { startRedisServer } from '../../lib/local/redis-server.ts';
import { FileAccountKey, jwkThumbprint } from '../../lib/sidecars/issuer/account-key.ts';
import { TestBed } from '../harness/testbed.ts';

const bed = new TestBed('issuer-bin');
const ENTRY = fileURLToPath(new URL('../../bin/issuer.ts', import.meta.url));

describe('bin/issuer.ts', () => {
  it('starts from env, serves its API on loopback, never logs the key, and stops on SIGTERM', async () => {
    const [redisPort, dynPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    bed.track(await startRedisServer({ port: redisPort, dir: bed.dir }));
    bed.track((await startDynalite({ port: dynPort, dir: bed.dir })).process);
    const client = (await import('../../lib/local/dynalite.ts')).localDynamoClient(
      `http://127.0.0.1:${dynPort}`,
    );
    await ensureTable(client, 'edge-bin');
    client.destroy();
    const keyPath = join(bed.dir, 'account.pem');
    const keyPem = await new FileAccountKey(keyPath, true).load();
    const logFile = join(bed.dir, 'issuer-bin.log');
    const proc = await ManagedProcess.start({
      name: 'issuer-bin',
      command: process.execPath,
      args: ['--import', 'tsx', ENTRY],
      env: {
        ...process.env,
        EDGE_PLATFORM_DOMAIN: 'platform.test',
        EDGE_REDIS_PORT: String(redisPort),
        EDGE_TABLE_NAME: 'edge-bin',
        EDGE_DYNAMODB_ENDPOINT: `http://127.0.0.1:${dynPort}`,
        EDGE_ISSUER_PORT: String(apiPort),
        EDGE_ACME_DIRECTORY_URL: 'https://acme.invalid/dir',
        EDGE_ACME_ACCOUNT_KEY_FILE: keyPath,
        EDGE_LOG_LEVEL: 'debug',
      },
      logFile,
      readyTimeoutMs: 30_000,
      ready: async () => (await fetch(`http://127.0.0.1:${apiPort}/healthz`)).ok,
    });
    const account = await (await fetch(`http://127.0.0.1:${apiPort}/v1/account`)).json();
    expect(account).toEqual({ thumbprint: jwkThumbprint(keyPem) });
    await proc.stop();
    expect(proc.running).toBe(false);
    const log = readFileSync(logFile, 'utf8');
    expect(log).toContain('"msg":"issuer started"');
    expect(log).toContain('"msg":"shutting down"');
    expect(log).toContain('"msg":"stopped"');
    expect(log).not.toContain('PRIVATE KEY');
  });

  it('refuses an invalid environment with a precise message', async () => {
    const logFile = join(bed.dir, 'issuer-bad.log');
    await expect(
      ManagedProcess.start({
        name: 'issuer-bad',
        command: process.execPath,
        args: ['--import', 'tsx', ENTRY],
        env: { ...process.env, EDGE_PLATFORM_DOMAIN: 'Not A Domain', EDGE_TABLE_NAME: 't' },
        logFile,
        ready: async () => false,
      }),
    ).rejects.toThrow(/exited with code 1/);
    const log = readFileSync(logFile, 'utf8');
    expect(log).toContain('invalid environment for issuer');
    expect(log).toContain('EDGE_PLATFORM_DOMAIN: ');
    expect(log).toContain('(got \\"Not A Domain\\")');
    expect(log).toContain('EDGE_TABLE_NAME: ');
  });
});

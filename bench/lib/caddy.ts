import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from '../../lib/local/ports.ts';
import { ManagedProcess } from '../../lib/local/process.ts';
import type { KeyPair } from './certs.ts';

/** Caddy (Debian's `caddy` package) on PATH, or undefined. */
export function caddyBinary(): string | undefined {
  const r = spawnSync('sh', ['-c', 'command -v caddy'], { encoding: 'utf8' });
  const path = r.stdout.trim();
  return r.status === 0 && path ? path : undefined;
}

export interface Caddy {
  readonly proc: ManagedProcess;
  readonly port: number;
}

/**
 * Caddy as a peer in the handshake figures: the bench's key pairs loaded from memory
 * (`tls.certificates.load_pem`, chosen by SNI against each certificate's name), TLS on one
 * loopback listener answering a fixed body, no ACME, no admin endpoint, errors-only logging, and
 * its local CA kept out of the machine's trust store.
 */
export async function startCaddy(dir: string, pairs: readonly KeyPair[]): Promise<Caddy> {
  const binary = caddyBinary();
  if (!binary) throw new Error('caddy is not installed (apt-get install caddy)');
  const port = await freePort();
  const config = {
    admin: { disabled: true },
    logging: { logs: { default: { level: 'ERROR' } } },
    storage: { module: 'file_system', root: join(dir, 'storage') },
    apps: {
      tls: {
        certificates: { load_pem: pairs.map((p) => ({ certificate: p.certPem, key: p.keyPem })) },
      },
      // Caddy's local CA would otherwise install its root into the machine's trust store.
      pki: { certificate_authorities: { local: { install_trust: false } } },
      http: {
        servers: {
          bench: {
            listen: [`127.0.0.1:${port}`],
            automatic_https: { disable: true },
            tls_connection_policies: [{}],
            routes: [{ handle: [{ handler: 'static_response', body: 'ok\n' }] }],
          },
        },
      },
    },
  };
  const file = join(dir, 'caddy.json');
  await writeFile(file, JSON.stringify(config));
  const proc = await ManagedProcess.start({
    name: 'caddy',
    command: binary,
    args: ['run', '--config', file],
    env: { ...process.env, HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir },
    logFile: join(dir, 'caddy.log'),
    ready: async () => {
      const { connect } = await import('node:net');
      return await new Promise<boolean>((resolve) => {
        const s = connect({ host: '127.0.0.1', port });
        s.once('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      });
    },
  });
  return { proc, port };
}

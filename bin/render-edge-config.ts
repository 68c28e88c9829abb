/**
 * The `edge-config` init container: renders nginx.conf from the task's EdgeConfig, makes the
 * fallback certificate, prepares the edge's writable volumes, then exits 0 so `edge` starts.
 *
 *   EDGE_CONFIG            EdgeConfig JSON (non-secret; the CDK stack validated it at synth)
 *   EDGE_CONF_DIR          where nginx.conf goes (default /etc/edge)
 *   EDGE_ACME_ACCOUNT_KEY  the ACME account key (PEM, or JSON with privateKeyPem), optional:
 *                          its thumbprint makes HTTP-01 answers stateless
 *   EDGE_FILES_OWNER       uid:gid that gets the files and volumes (the edge's user)
 */
import { chown, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type EdgeConfig, parseEdgeConfig } from '../lib/config/edge-config.ts';
import { ensureFallbackCertificate } from '../lib/edge/fallback-cert.ts';
import { renderNginxConf } from '../lib/edge/nginx-conf.ts';
import { jwkThumbprint } from '../lib/sidecars/issuer/account-key.ts';

export interface RenderResult {
  readonly config: EdgeConfig;
  readonly confPath: string;
  readonly thumbprint?: string;
}

/** The account key's thumbprint, or undefined while the secret still holds its placeholder. */
export function accountThumbprint(secret: string | undefined): string | undefined {
  if (!secret) return undefined;
  let pem = secret;
  if (secret.trimStart().startsWith('{')) {
    const doc = JSON.parse(secret) as { privateKeyPem?: unknown };
    if (typeof doc.privateKeyPem !== 'string') return undefined;
    pem = doc.privateKeyPem;
  }
  if (!pem.includes('PRIVATE KEY')) return undefined;
  return jwkThumbprint(pem);
}

/** The EdgeConfig from EDGE_CONFIG plus the thumbprint, validated again inside the task. */
export function edgeConfigFromEnv(env: NodeJS.ProcessEnv): { config: EdgeConfig; thumbprint?: string } {
  if (!env.EDGE_CONFIG) throw new Error('EDGE_CONFIG is not set');
  const input = JSON.parse(env.EDGE_CONFIG) as Record<string, unknown>;
  const thumbprint = accountThumbprint(env.EDGE_ACME_ACCOUNT_KEY);
  const acme = {
    ...((input.acme as object | undefined) ?? {}),
    ...(thumbprint ? { accountThumbprint: thumbprint } : {}),
  };
  return { config: parseEdgeConfig({ ...input, acme }), ...(thumbprint ? { thumbprint } : {}) };
}

async function chownTree(path: string, uid: number, gid: number): Promise<void> {
  await chown(path, uid, gid);
  for (const entry of await readdir(path, { withFileTypes: true })) {
    const child = join(path, entry.name);
    if (entry.isDirectory()) await chownTree(child, uid, gid);
    else await chown(child, uid, gid);
  }
}

export async function renderEdgeFiles(env: NodeJS.ProcessEnv): Promise<RenderResult> {
  const { config, thumbprint } = edgeConfigFromEnv(env);
  const confDir = env.EDGE_CONF_DIR ?? '/etc/edge';
  const { runDir, cacheDir } = config.paths;
  const dirs = [confDir, join(runDir, 'tmp'), cacheDir];
  if (config.tls.engine === 'auto-ssl') dirs.push(join(runDir, 'auto-ssl'));
  for (const dir of dirs) await mkdir(dir, { recursive: true });
  await ensureFallbackCertificate(config.paths.fallbackCert, config.paths.fallbackKey);
  const confPath = join(confDir, 'nginx.conf');
  await writeFile(confPath, renderNginxConf(config), { mode: 0o644 });

  const owner = env.EDGE_FILES_OWNER;
  if (owner && process.getuid?.() === 0) {
    const [uid, gid] = owner.split(':').map(Number);
    if (uid === undefined || gid === undefined || Number.isNaN(uid) || Number.isNaN(gid)) {
      throw new Error(`EDGE_FILES_OWNER must be uid:gid, got "${owner}"`);
    }
    for (const dir of [confDir, runDir, cacheDir]) await chownTree(dir, uid, gid);
  }
  return { config, confPath, ...(thumbprint ? { thumbprint } : {}) };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  renderEdgeFiles(process.env).then(
    (r) => {
      const line = {
        event: 'edge_config_rendered',
        region: r.config.region,
        engine: r.config.tls.engine,
        conf: r.confPath,
        statelessChallenges: Boolean(r.thumbprint),
      };
      process.stdout.write(`${JSON.stringify(line)}\n`);
    },
    (err: unknown) => {
      process.stderr.write(`${JSON.stringify({ event: 'edge_config_failed', err: String(err) })}\n`);
      process.exit(1);
    },
  );
}

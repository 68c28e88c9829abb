/**
 * The `edge-config` init container: renders nginx.conf from the task's EdgeConfig, makes the
 * fallback certificate, prepares the edge's writable volumes, then exits 0 so `edge` starts.
 * Its environment contract is `edgeConfigEnv` (lib/edge/environment.ts): EDGE_CONFIG,
 * EDGE_CONF_DIR, EDGE_FILES_OWNER, EDGE_ACME_ACCOUNT_KEY (secret), EDGE_TICKET_SECRET (secret),
 * EDGE_LOG_LEVEL. It also writes the session ticket keys derived from the region's secret, so
 * nginx never holds the secret itself (lib/edge/ticket-keys.ts).
 */
import { chown, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type EdgeConfig, parseEdgeConfig } from '../lib/config/edge-config.ts';
import { accountKeyPem, prepareAutoSslDir } from '../lib/edge/auto-ssl-dir.ts';
import { edgeConfigEnv } from '../lib/edge/environment.ts';
import { ensureFallbackCertificate } from '../lib/edge/fallback-cert.ts';
import { renderNginxConf } from '../lib/edge/nginx-conf.ts';
import { type TicketKeyWindow, writeConfiguredTicketKeys } from '../lib/edge/ticket-keys.ts';
import { jwkThumbprint } from '../lib/sidecars/issuer/account-key.ts';
import { runMain, startSidecar } from '../lib/sidecars/runtime/start.ts';

export interface RenderResult {
  readonly config: EdgeConfig;
  readonly confPath: string;
  readonly thumbprint?: string;
  /** The ticket key window written (none while tickets are off). */
  readonly tickets?: TicketKeyWindow;
}

/** The account key's thumbprint, or undefined while the secret still holds its placeholder. */
export function accountThumbprint(secret: string | undefined): string | undefined {
  const pem = accountKeyPem(secret);
  return pem === undefined ? undefined : jwkThumbprint(pem);
}

/** The EdgeConfig from EDGE_CONFIG plus the thumbprint, validated again inside the task. */
export function edgeConfigFromEnv(env: NodeJS.ProcessEnv): { config: EdgeConfig; thumbprint?: string } {
  return edgeConfigFromVars(edgeConfigEnv.parse(env));
}

function edgeConfigFromVars(vars: ReturnType<typeof edgeConfigEnv.parse>): {
  config: EdgeConfig;
  thumbprint?: string;
} {
  let input: Record<string, unknown>;
  try {
    input = JSON.parse(vars.edgeConfig) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`EDGE_CONFIG: not valid JSON (${(err as Error).message})`);
  }
  const thumbprint = accountThumbprint(vars.acmeAccountKey);
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
  return renderFromVars(edgeConfigEnv.parse(env));
}

async function renderFromVars(vars: ReturnType<typeof edgeConfigEnv.parse>): Promise<RenderResult> {
  const { config, thumbprint } = edgeConfigFromVars(vars);
  const confDir = vars.confDir;
  const { runDir, cacheDir } = config.paths;
  const dirs = [confDir, join(runDir, 'tmp'), cacheDir];
  if (config.tls.engine === 'auto-ssl') dirs.push(join(runDir, 'auto-ssl'));
  for (const dir of dirs) await mkdir(dir, { recursive: true });
  // auto-ssl: dehydrated's drop-in (the CA's trust) and the deployment's shared account key.
  if (config.tls.engine === 'auto-ssl') await prepareAutoSslDir(config, vars.acmeAccountKey);
  await ensureFallbackCertificate(config.paths.fallbackCert, config.paths.fallbackKey);
  let tickets: TicketKeyWindow | undefined;
  if (config.tls.sessionTickets.enabled) {
    if (!vars.ticketSecret) {
      throw new Error('EDGE_TICKET_SECRET is required while tls.sessionTickets.enabled is true');
    }
    tickets = await writeConfiguredTicketKeys(config, vars.ticketSecret);
  }
  const confPath = join(confDir, 'nginx.conf');
  await writeFile(confPath, renderNginxConf(config), { mode: 0o644 });

  const owner = vars.filesOwner;
  if (owner && process.getuid?.() === 0) {
    const [uid = 0, gid = 0] = owner.split(':').map(Number);
    for (const dir of [confDir, runDir, cacheDir]) await chownTree(dir, uid, gid);
  }
  return { config, confPath, ...(thumbprint ? { thumbprint } : {}), ...(tickets ? { tickets } : {}) };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  runMain('render-edge-config', async () => {
    const { config: vars, log } = startSidecar(edgeConfigEnv);
    const r = await renderFromVars(vars);
    log.info(
      {
        engine: r.config.tls.engine,
        conf: r.confPath,
        statelessChallenges: Boolean(r.thumbprint),
        // Epoch numbers only: never key material.
        ...(r.tickets ? { ticketKeyEpochs: { from: r.tickets.epoch - 1, to: r.tickets.last } } : {}),
      },
      'edge config rendered',
    );
  });
}

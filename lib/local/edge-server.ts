import { execFile } from 'node:child_process';
import { chmod, lchown, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type EdgeConfig, type EdgeConfigInput, parseEdgeConfig } from '../config/edge-config.ts';
import { ensureFallbackCertificate } from '../edge/fallback-cert.ts';
import { renderNginxConf } from '../edge/nginx-conf.ts';
import { detectNginxRuntime } from '../edge/nginx-runtime.ts';
import { localTicketSecret, writeConfiguredTicketKeys } from '../edge/ticket-keys.ts';
import { ManagedProcess } from './process.ts';

const run = promisify(execFile);
export const LUA_DIR = resolve(fileURLToPath(new URL('../../lua', import.meta.url)));

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

export interface LocalEdgeOptions {
  /** Directory for the rendered config, logs, cache and fallback certificate. */
  readonly dir: string;
  readonly controlToken: string;
  /** Everything else of the EdgeConfig; paths and modules are filled in for this machine. */
  readonly config: Omit<EdgeConfigInput, 'paths'> & { paths?: DeepPartial<EdgeConfigInput['paths']> };
  /**
   * The region's session ticket secret, generated there once when missing. Edges given the same
   * file resume each other's tickets. Default: `ticket-secret` in `dir`.
   */
  readonly ticketSecretFile?: string;
  /**
   * Run nginx's master (and so its workers) as this user when started as root, as in the task:
   * the worker that rotates the ticket keys can then signal its master to reload. Default: the
   * current user (as root: a root master, workers as nobody, which cannot signal it).
   */
  readonly user?: { readonly uid: number; readonly gid: number };
}

/** The user a root nginx master gives its workers when nginx.conf names none. */
const NOBODY = { uid: 65534, gid: 65534 };

export interface LocalEdge {
  readonly config: EdgeConfig;
  readonly confPath: string;
  readonly process: ManagedProcess;
  readonly errorLog: string;
  readonly accessLog: string;
}

/** The EdgeConfig for running nginx from `dir` on this machine (Debian's nginx or OpenResty). */
export function localEdgeConfig(opts: LocalEdgeOptions): EdgeConfig {
  const runtime = detectNginxRuntime();
  const { paths, nginx, origins, ...rest } = opts.config;
  return parseEdgeConfig({
    ...rest,
    // Local origins are servers on loopback; the edge's own ports stay refused (edge/origin_guard.lua).
    origins: { allowNetworks: ['127.0.0.0/8'], ...origins },
    nginx: { loadModules: runtime.loadModules, ...nginx },
    tls: { postQuantum: runtime.opensslHasMlkem, ...rest.tls },
    compression: { brotli: runtime.brotli, ...rest.compression },
    paths: {
      runDir: opts.dir,
      luaDir: LUA_DIR,
      luaPackagePath: runtime.luaPackagePath,
      luaPackageCpath: runtime.luaPackageCpath,
      cacheDir: join(opts.dir, 'cache'),
      fallbackCert: join(opts.dir, 'fallback.crt'),
      fallbackKey: join(opts.dir, 'fallback.key'),
      errorLog: join(opts.dir, 'error.log'),
      accessLog: join(opts.dir, 'access.log'),
      ...paths,
    },
  });
}

/**
 * Started as root, nginx's workers run as nobody: each directory above `dir` must let others
 * enter it (o+x), or every request fails with 500 and a `[crit]` line. Throws, naming the
 * directory, instead of starting an edge that cannot serve.
 */
export async function assertWorkersCanEnter(dir: string, what: string): Promise<void> {
  if (process.getuid?.() !== 0) return; // not root: the workers run as this user
  for (let d = resolve(dir); ; d = dirname(d)) {
    const mode = (await stat(d)).mode;
    if ((mode & 0o001) === 0) {
      throw new Error(
        `${what} ${dir}: nginx's workers run as an unprivileged user and cannot enter ${d} ` +
          `(mode ${(mode & 0o777).toString(8).padStart(4, '0')}); use a directory they can reach ` +
          `(e.g. under /tmp) or allow it with chmod o+x ${d}`,
      );
    }
    if (dirname(d) === d) return;
  }
}

export interface PrepareEdgeOptions {
  /** See LocalEdgeOptions.ticketSecretFile. */
  readonly ticketSecretFile?: string;
  /** See LocalEdgeOptions.user: it is given the run directory and the cache. */
  readonly user?: { readonly uid: number; readonly gid: number };
}

/**
 * Writes the rendered nginx.conf and the session ticket keys, and checks them with `nginx -t`;
 * returns the config's path.
 */
export async function prepareEdge(
  config: EdgeConfig,
  env: NodeJS.ProcessEnv,
  opts: PrepareEdgeOptions = {},
): Promise<string> {
  const runtime = detectNginxRuntime();
  await mkdir(join(config.paths.runDir, 'tmp'), { recursive: true });
  // The fill hop's socket (nginx.conf) outlives an nginx that was killed; bind would then fail.
  await rm(join(config.paths.runDir, `fill-${config.listen.httpsPort}.sock`), { force: true });
  await mkdir(config.paths.cacheDir, { recursive: true });
  // Started as root, nginx's workers run as nobody: they must reach the cache and temp directories.
  await chmod(config.paths.runDir, 0o755);
  await assertWorkersCanEnter(config.paths.runDir, 'the run directory (EDGE_RUN_DIR)');
  await assertWorkersCanEnter(config.paths.cacheDir, 'the cache directory');
  await ensureFallbackCertificate(config.paths.fallbackCert, config.paths.fallbackKey);
  const root = process.getuid?.() === 0;
  if (config.tls.sessionTickets.enabled) {
    const secret = await localTicketSecret(
      opts.ticketSecretFile ?? join(config.paths.runDir, 'ticket-secret'),
    );
    // The worker that relinks the keys each epoch owns their directory: as root, nobody.
    await writeConfiguredTicketKeys(config, secret, root ? { owner: opts.user ?? NOBODY } : {});
  }
  const confPath = join(config.paths.runDir, 'nginx.conf');
  await writeFile(confPath, renderNginxConf(config));
  try {
    await run(runtime.binary, ['-t', '-q', '-p', config.paths.runDir, '-c', confPath], { env });
  } catch (err) {
    const e = err as { stderr?: string };
    throw new Error(`nginx -t failed for ${confPath}:\n${e.stderr ?? String(err)}`);
  }
  if (root && opts.user) {
    // The ticket secret stays root's: nginx needs only the keys derived from it.
    const keep = new Set([opts.ticketSecretFile ?? join(config.paths.runDir, 'ticket-secret')]);
    for (const dir of [config.paths.runDir, config.paths.cacheDir]) await chownTree(dir, opts.user, keep);
  }
  return confPath;
}

async function chownTree(path: string, user: { uid: number; gid: number }, keep: Set<string>): Promise<void> {
  await lchown(path, user.uid, user.gid);
  for (const entry of await readdir(path, { withFileTypes: true })) {
    const child = join(path, entry.name);
    if (keep.has(child)) continue;
    if (entry.isDirectory()) await chownTree(child, user, keep);
    else await lchown(child, user.uid, user.gid);
  }
}

function controlGet(config: EdgeConfig, path: string): Promise<number> {
  return new Promise((resolveStatus, reject) => {
    const req = request(
      { host: config.listen.controlAddress, port: config.listen.controlPort, path, timeout: 1000 },
      (res) => {
        res.resume();
        resolveStatus(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

export async function startEdge(opts: LocalEdgeOptions): Promise<LocalEdge> {
  const config = localEdgeConfig(opts);
  const env = { ...process.env, EDGE_CONTROL_TOKEN: opts.controlToken };
  const prepared = {
    ...(opts.ticketSecretFile ? { ticketSecretFile: opts.ticketSecretFile } : {}),
    ...(opts.user ? { user: opts.user } : {}),
  };
  const confPath = await prepareEdge(config, env, prepared);
  const runtime = detectNginxRuntime();
  const proc = await ManagedProcess.start({
    name: `nginx:${config.region}`,
    command: runtime.binary,
    args: ['-p', config.paths.runDir, '-c', confPath],
    env,
    ...(opts.user && process.getuid?.() === 0 ? { user: opts.user } : {}),
    logFile: join(config.paths.runDir, 'nginx.stdout.log'),
    stopSignal: 'SIGQUIT',
    ready: async () => (await controlGet(config, '/healthz')) === 200,
  });
  return {
    config,
    confPath,
    process: proc,
    errorLog: config.paths.errorLog,
    accessLog: config.paths.accessLog,
  };
}

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { detectNginxRuntime } from '../../lib/edge/nginx-runtime.ts';
import { LUA_DIR } from '../../lib/local/edge-server.ts';
import { freePort } from '../../lib/local/ports.ts';
import { ManagedProcess } from '../../lib/local/process.ts';
import { httpGet } from './clients.ts';
import type { TestBed } from './testbed.ts';

/** A bare nginx with the Lua module and the edge's Lua on its path, for one Lua module's tests. */
export interface LuaNginxOptions {
  /** The process's name in logs and failure reports. */
  readonly name: string;
  readonly workers?: number;
  readonly workerConnections?: number;
  /** The main error log (default `<bed>/error.log`), written at info. */
  readonly errorLog?: string;
  /** More Lua search patterns before the edge's own (e.g. a test module in the bed). */
  readonly luaPaths?: readonly string[];
  /** What goes inside `http {}` after the Lua paths: shared dicts, init blocks, the server. */
  readonly http: (port: number) => string;
  /** A GET that answers `readyStatus` once the server is up. */
  readonly readyPath: string;
  readonly readyStatus?: number;
}

/** Starts it (tracked by the bed, stopped with it); returns its loopback port. */
export async function startLuaNginx(bed: TestBed, opts: LuaNginxOptions): Promise<number> {
  const rt = detectNginxRuntime();
  const port = await freePort();
  await mkdir(join(bed.dir, 'tmp'), { recursive: true });
  const conf = join(bed.dir, 'nginx.conf');
  const luaPath = [...(opts.luaPaths ?? []), `${LUA_DIR}/?.lua`, ...rt.luaPackagePath].join(';');
  await writeFile(
    conf,
    `${rt.loadModules.map((m) => `load_module ${m};`).join('\n')}
daemon off;
worker_processes ${opts.workers ?? 1};
pid ${bed.dir}/nginx.pid;
error_log ${opts.errorLog ?? join(bed.dir, 'error.log')} info;
events { worker_connections ${opts.workerConnections ?? 64}; }
http {
  access_log off;
  client_body_temp_path ${bed.dir}/tmp;
  lua_package_path "${luaPath};;";
  lua_package_cpath "${rt.luaPackageCpath.join(';')};;";
${opts.http(port)}
}
`,
  );
  const readyStatus = opts.readyStatus ?? 200;
  bed.track(
    await ManagedProcess.start({
      name: opts.name,
      command: rt.binary,
      args: ['-p', bed.dir, '-c', conf],
      logFile: join(bed.dir, 'nginx.stdout.log'),
      stopSignal: 'SIGQUIT',
      ready: async () =>
        (await httpGet({ port, path: opts.readyPath }).catch(() => ({ status: 0 }))).status === readyStatus,
    }),
  );
  return port;
}

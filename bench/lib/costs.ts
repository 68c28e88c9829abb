import { mkdir, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EdgeConfig } from '../../lib/config/edge-config.ts';
import { luaRuntimeConfig } from '../../lib/edge/nginx-conf.ts';
import { detectNginxRuntime } from '../../lib/edge/nginx-runtime.ts';
import { freePort } from '../../lib/local/ports.ts';
import { ManagedProcess } from '../../lib/local/process.ts';

const BENCH_LUA = fileURLToPath(new URL('./lua', import.meta.url));

/**
 * Times each step of the edge's Lua hot paths in isolation (bench/lib/lua/bench_costs.lua),
 * in a separate one-worker nginx that loads the project's modules with the edge's runtime
 * config and talks to the same Redis. Returns CPU microseconds per call, by step.
 */
export async function measureLuaCosts(opts: {
  readonly dir: string;
  readonly edgeConfig: EdgeConfig;
  readonly certKey: string;
  readonly name: string;
  readonly tenant: string;
  readonly iterations: number;
}): Promise<Record<string, number>> {
  const runtime = detectNginxRuntime();
  const c = opts.edgeConfig;
  await mkdir(join(opts.dir, 'tmp'), { recursive: true });
  const port = await freePort();
  const luaPath = [`${c.paths.luaDir}/?.lua`, `${BENCH_LUA}/?.lua`, ...c.paths.luaPackagePath, ';'].join(';');
  const conf = [
    ...c.nginx.loadModules.map((m) => `load_module ${m};`),
    'worker_processes 1;',
    'daemon off;',
    `pid ${opts.dir}/nginx.pid;`,
    `error_log ${opts.dir}/error.log warn;`,
    'env EDGE_CONTROL_TOKEN;',
    'events { worker_connections 64; }',
    'http {',
    `  client_body_temp_path ${opts.dir}/tmp/body;`,
    `  proxy_temp_path ${opts.dir}/tmp/proxy;`,
    `  fastcgi_temp_path ${opts.dir}/tmp/fastcgi;`,
    `  uwsgi_temp_path ${opts.dir}/tmp/uwsgi;`,
    `  scgi_temp_path ${opts.dir}/tmp/scgi;`,
    '  access_log off;',
    `  lua_package_path "${luaPath}";`,
    `  lua_package_cpath "${[...c.paths.luaPackageCpath, ';'].join(';')}";`,
    `  lua_shared_dict edge_certs ${c.sharedDicts.certs};`,
    `  lua_shared_dict edge_routes ${c.sharedDicts.routes};`,
    `  lua_shared_dict edge_purge ${c.sharedDicts.purge};`,
    `  lua_shared_dict edge_metrics ${c.sharedDicts.metrics};`,
    `  lua_shared_dict edge_locks ${c.sharedDicts.locks};`,
    `  lua_shared_dict edge_objects ${c.sharedDicts.objects};`,
    `  lua_shared_dict edge_negative ${c.sharedDicts.negative};`,
    `  init_by_lua_block { require("edge.config").load([==[${JSON.stringify(luaRuntimeConfig(c))}]==]) }`,
    '  server {',
    `    listen 127.0.0.1:${port};`,
    '    set $edge_tenant "";',
    '    set $edge_error "";',
    '    set $edge_cache_key "";',
    '    set $edge_origin "";',
    '    set $edge_origin_uri "";',
    '    location / { content_by_lua_block { require("bench_costs").run() } }',
    '  }',
    '}',
    '',
  ].join('\n');
  const confPath = join(opts.dir, 'nginx.conf');
  await writeFile(confPath, conf);
  const proc = await ManagedProcess.start({
    name: 'nginx:costs',
    command: runtime.binary,
    args: ['-p', opts.dir, '-c', confPath],
    env: { ...process.env, EDGE_CONTROL_TOKEN: 'x'.repeat(32) },
    logFile: join(opts.dir, 'nginx.stdout.log'),
    stopSignal: 'SIGQUIT',
    ready: () =>
      new Promise((resolve) => {
        const s = connect({ host: '127.0.0.1', port });
        s.once('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      }),
  });
  try {
    const q = new URLSearchParams({
      n: String(opts.iterations),
      key: opts.certKey,
      name: opts.name,
      tenant: opts.tenant,
    });
    const res = await fetch(`http://127.0.0.1:${port}/?${q}`);
    if (res.status !== 200) throw new Error(`cost probe answered ${res.status}: ${await res.text()}`);
    return (await res.json()) as Record<string, number>;
  } finally {
    await proc.stop();
  }
}

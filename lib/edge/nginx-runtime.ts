import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';

/** How to run nginx with the Lua module on this machine: OpenResty when present, else Debian's stack. */
export interface NginxRuntime {
  readonly binary: string;
  readonly loadModules: string[];
  readonly luaPackagePath: string[];
  readonly luaPackageCpath: string[];
  /** Debian's brotli filter module is installed (its load_module lines are in loadModules). */
  readonly brotli: boolean;
  /** The OpenSSL nginx runs with has X25519MLKEM768 (3.5 and later). */
  readonly opensslHasMlkem: boolean;
}

/** Whether the OpenSSL this nginx runs with (`nginx -V`) is 3.5 or later. */
const mlkem = new Map<string, boolean>();
function hasMlkem(binary: string): boolean {
  const known = mlkem.get(binary);
  if (known !== undefined) return known;
  const run = spawnSync(binary, ['-V'], { encoding: 'utf8' });
  const text = `${run.stdout ?? ''}${run.stderr ?? ''}`; // nginx -V writes to stderr
  const m = /running with OpenSSL (\d+)\.(\d+)/.exec(text) ?? /built with OpenSSL (\d+)\.(\d+)/.exec(text);
  if (!m) {
    mlkem.set(binary, false);
    return false;
  }
  const [major, minor] = [Number(m[1]), Number(m[2])];
  const yes = major > 3 || (major === 3 && minor >= 5);
  mlkem.set(binary, yes);
  return yes;
}

const OPENRESTY = ['/usr/local/openresty/bin/openresty', '/usr/bin/openresty'];
const DEBIAN_MODULES = '/usr/lib/nginx/modules';

export function detectNginxRuntime(): NginxRuntime {
  const openresty = OPENRESTY.find((p) => existsSync(p));
  if (openresty) {
    return {
      binary: openresty,
      loadModules: [],
      luaPackagePath: [],
      luaPackageCpath: [],
      brotli: false,
      opensslHasMlkem: hasMlkem(openresty),
    };
  }

  const modules = ['ndk_http_module.so', 'ngx_http_lua_module.so'].map((m) => `${DEBIAN_MODULES}/${m}`);
  const missing = modules.filter((m) => !existsSync(m));
  if (!existsSync('/usr/sbin/nginx') || missing.length > 0) {
    throw new Error(
      `nginx with the Lua module was not found (missing: ${missing.join(', ') || '/usr/sbin/nginx'}); run scripts/setup.sh`,
    );
  }
  // lua-cjson's shared object lives under the multiarch directory (x86_64-linux-gnu, aarch64-linux-gnu, ...).
  const cpath = readdirSync('/usr/lib')
    .filter((d) => d.endsWith('-linux-gnu'))
    .map((d) => `/usr/lib/${d}/lua/5.1/?.so`)
    .filter((p) => existsSync(p.replace('/?.so', '')));
  const brotli = `${DEBIAN_MODULES}/ngx_http_brotli_filter_module.so`;
  const hasBrotli = existsSync(brotli);
  return {
    binary: '/usr/sbin/nginx',
    loadModules: hasBrotli ? [...modules, brotli] : modules,
    brotli: hasBrotli,
    luaPackagePath: ['/usr/share/lua/5.1/?.lua'],
    luaPackageCpath: cpath,
    opensslHasMlkem: hasMlkem('/usr/sbin/nginx'),
  };
}

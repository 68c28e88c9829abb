#!/bin/sh
# Starts nginx with the nginx.conf rendered by the `edge-config` container (bin/render-edge-config.ts).
# Works with Debian's nginx (edge-image/Dockerfile.edge) and OpenResty (Dockerfile.edge-openresty).
set -eu

conf_dir="${EDGE_CONF_DIR:-/etc/edge}"
run_dir="${EDGE_RUN_DIR:-/var/run/edge}"
conf="$conf_dir/nginx.conf"

log() { printf '{"event":"%s","detail":"%s"}\n' "$1" "$2" >&2; }

if [ ! -s "$conf" ]; then
  log edge_config_missing "$conf not found: the edge-config container renders it before nginx starts"
  exit 78
fi

# Standalone runs without the render container: generate the fallback certificate here.
if [ ! -s "$conf_dir/fallback.crt" ] || [ ! -s "$conf_dir/fallback.key" ]; then
  log fallback_certificate_generated "$conf_dir/fallback.crt"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
    -subj '/CN=edge fallback certificate' \
    -keyout "$conf_dir/fallback.key" -out "$conf_dir/fallback.crt" 2>/dev/null
  chmod 0600 "$conf_dir/fallback.key"
fi

mkdir -p "$run_dir/tmp"
# The fill hop's socket (nginx.conf) is left behind when nginx is killed; bind would then fail.
rm -f "$run_dir"/fill-*.sock
if [ "${EDGE_TLS_ENGINE:-native}" = "auto-ssl" ]; then
  mkdir -p "$run_dir/auto-ssl"
fi

# Debian's nginx has Lua as dynamic modules: the image names them in edge-modules.conf, loaded
# ahead of the rendered config unless that config already loads modules itself (local runs do).
# OpenResty has no such file and runs the rendered config as it is.
modules="${EDGE_NGINX_MODULES:-/etc/nginx/edge-modules.conf}"
if [ -s "$modules" ] && ! grep -q '^load_module ' "$conf"; then
  printf '# Written by edge-entrypoint: the image'"'"'s modules, then the rendered config.\ninclude %s;\ninclude %s;\n' \
    "$modules" "$conf" >"$run_dir/nginx.conf"
  conf="$run_dir/nginx.conf"
fi

nginx -t -q -p "$run_dir" -c "$conf" -e stderr
exec nginx -p "$run_dir" -c "$conf" -e stderr

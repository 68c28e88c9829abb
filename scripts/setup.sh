#!/usr/bin/env bash
# Installs what the local edge and the tests need, idempotently, on Debian 12 with Node 20:
# nginx with the Lua module (unless OpenResty is installed), Redis, Pebble, wrk, luacheck, and npm ci.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(redis-server pebble wrk openssl ca-certificates lua-check)
if ! command -v openresty >/dev/null 2>&1 && [ ! -x /usr/local/openresty/bin/openresty ]; then
  packages+=(nginx-light libnginx-mod-http-lua libnginx-mod-http-ndk lua-resty-core lua-resty-lrucache lua-nginx-redis lua-cjson)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

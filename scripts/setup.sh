#!/usr/bin/env bash
# Installs what the local edge and the tests need, idempotently, on Debian 12: nginx with the Lua
# module (unless OpenResty is installed), Redis, Pebble, wrk, luacheck, the project's Node 24 LTS
# (scripts/install-node.sh; the machine's Node only bootstraps it), and npm ci run by that Node.
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

bash scripts/install-node.sh
source scripts/node-env.sh
# Reinstall when the lock changed or node_modules was installed by another Node major.
marker=node_modules/.edge-node-major
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ] \
  || [ "$(cat "$marker" 2>/dev/null)" != "$EDGE_NODE_MAJOR" ]; then
  npm ci --no-audit --no-fund
  echo "$EDGE_NODE_MAJOR" >"$marker"
fi
# The CLI runs compiled (dist/bin/edge.js, package.json bin): no transpiling at each command.
npm run -s build

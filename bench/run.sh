#!/usr/bin/env bash
# npm run bench: the edge against plain nginx, ratios measured in one run. See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/node-env.sh

missing=()
for tool in wrk redis-server openssl nginx taskset unshare; do
  command -v "$tool" >/dev/null 2>&1 || [[ -x "/usr/sbin/$tool" ]] || missing+=("$tool")
done
if ((${#missing[@]})); then
  echo "bench: missing tools: ${missing[*]} (apt-get install wrk redis-server nginx libnginx-mod-http-lua util-linux)" >&2
  exit 1
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "bench: run as root: wrk resolves the bench names through a hosts file bind-mounted in a private mount namespace (unshare -m)" >&2
  exit 1
fi
if [[ ${BENCH_PIN:-1} != 0 ]] && (($(nproc) < 2)); then
  echo "bench: fewer than 2 CPUs; running without pinning" >&2
  export BENCH_PIN=0
fi

exec npx tsx bench/edge-vs-nginx.ts "$@"

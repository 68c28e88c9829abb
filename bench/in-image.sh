#!/usr/bin/env bash
# npm run bench:image: the same bench (bench/run.sh, same settings from BENCH_*) run inside the
# shipped edge image, so the edge and the static baseline both use the image's nginx and
# OpenSSL 3.5. The working tree (Lua, bench, the project's Node) is mounted at the same path;
# cgroups are the host's (--cgroupns=host), so the CPU budgets work as on the host.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${BENCH_IMAGE:-localhost/edge-cdn/edge:dev}
tag=localhost/edge-cdn/bench-on-edge:dev
podman=(podman --runtime runc --cgroup-manager=cgroupfs)
if ! "${podman[@]}" image exists "$base"; then
  echo "bench:image: $base is missing: npm run images" >&2
  exit 1
fi
"${podman[@]}" build --network=host --build-arg "BASE=$base" -t "$tag" -f bench/image/Containerfile bench/image >&2
exec "${podman[@]}" run --rm --network=host --privileged --cgroupns=host \
  --env 'BENCH_*' -v "$PWD:$PWD" -w "$PWD" --entrypoint bash "$tag" bench/run.sh "$@"

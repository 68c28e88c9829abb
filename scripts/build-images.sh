#!/usr/bin/env bash
# npm run images: builds the edge, sidecar and Redis images with podman from bases made on this
# machine (no image registry needed; see docs/images.md and ../shared/CONTAINERS.md):
#   trixie-base  debootstrap --variant=minbase trixie, plus this machine's CA bundle
#   node-base    trixie-base + the project's Node 24 and npm 11 (scripts/install-node.sh)
#   edge, sidecars, redis  from edge-image/, named in edge-image/images.env
# Idempotent: the rootfs tarball is cached (EDGE_IMAGE_CACHE, default /var/tmp/edge-cdn), bases
# are made once (EDGE_REBUILD_BASES=1 remakes them), and layers are reused on rebuilds.
set -euo pipefail
cd "$(dirname "$0")/.."
source edge-image/images.env
source scripts/node-env.sh

started=$(date +%s)
declare -A took
cache="${EDGE_IMAGE_CACHE:-/var/tmp/edge-cdn}"
suite=trixie
mirror="${EDGE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
host_ca=/etc/ssl/certs/ca-certificates.crt
sudo=""
[[ $(id -u) -ne 0 ]] && sudo="sudo"

log() { printf 'images: %s\n' "$*"; }
since() { echo "$(($(date +%s) - $1))s"; }

# --- tools: podman with runc (crun refuses hybrid cgroups), debootstrap, and catatonit: the pause
# process of the rehearsal's pod (only a Recommends of podman, which --no-install-recommends skips).
missing=()
for p in podman runc debootstrap catatonit; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The default ulimits cannot be raised on these machines.
if ! grep -qs '^default_ulimits = \[\]' /etc/containers/containers.conf; then
  $sudo mkdir -p /etc/containers
  printf '[containers]\ndefault_ulimits = []\n' | $sudo tee -a /etc/containers/containers.conf >/dev/null
fi

podman=(podman --runtime runc --cgroup-manager=cgroupfs)
[[ -n $sudo ]] && podman=("$sudo" "${podman[@]}")
build() { "${podman[@]}" build --network=host --layers "$@"; }
exists() { "${podman[@]}" image exists "$1"; }
rebuild_bases="${EDGE_REBUILD_BASES:-0}"

# --- trixie-base: debootstrap once, the tarball cached outside the repository ----------------
if [[ $rebuild_bases == 1 ]] || ! exists "$EDGE_IMAGE_TRIXIE_BASE"; then
  t=$(date +%s)
  tarball="$cache/$suite-minbase.tar"
  if [[ $rebuild_bases == 1 || ! -s $tarball ]]; then
    log "debootstrap $suite (about 1-3 minutes)"
    $sudo mkdir -p "$cache"
    rootfs="$cache/rootfs.$$"
    $sudo rm -rf "$rootfs"
    $sudo debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 \
      || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
    # Security and point-release updates, as the official image has them.
    printf 'deb %s %s main\ndeb %s %s-updates main\ndeb http://security.debian.org/debian-security %s-security main\n' \
      "$mirror" "$suite" "$mirror" "$suite" "$suite" | $sudo tee "$rootfs/etc/apt/sources.list" >/dev/null
    # Images stay small and builds never prompt.
    printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
      | $sudo tee "$rootfs/etc/apt/apt.conf.d/90edge-no-recommends" >/dev/null
    $sudo rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log
    $sudo tar -C "$rootfs" --numeric-owner -cf "$tarball.tmp" .
    $sudo mv "$tarball.tmp" "$tarball"
    $sudo rm -rf "$rootfs"
  fi
  # The build machine's CA bundle: apt, npm and Node inside builds reach the registries through
  # it. Kept under /usr/local/share/ca-certificates too, so installing ca-certificates keeps it.
  ctx="$(mktemp -d)"
  trap 'rm -rf "$ctx"' EXIT
  cp "$host_ca" "$ctx/build-host-ca.crt"
  id=$("${podman[@]}" import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' "$tarball")
  printf 'FROM %s\nCOPY build-host-ca.crt /etc/ssl/certs/ca-certificates.crt\nCOPY build-host-ca.crt /usr/local/share/ca-certificates/build-host-ca.crt\n' "$id" \
    >"$ctx/Containerfile"
  build -q -t "$EDGE_IMAGE_TRIXIE_BASE" -f "$ctx/Containerfile" "$ctx" >/dev/null
  "${podman[@]}" rmi "$id" >/dev/null
  took[$EDGE_IMAGE_TRIXIE_BASE]=$(since "$t")
  log "$EDGE_IMAGE_TRIXIE_BASE made in ${took[$EDGE_IMAGE_TRIXIE_BASE]}"
fi

# --- node-base: the tests' Node 24 and npm 11 on trixie-base ---------------------------------
if [[ $rebuild_bases == 1 ]] || ! exists "$EDGE_IMAGE_NODE_BASE"; then
  t=$(date +%s)
  bash scripts/install-node.sh
  build -q --build-arg "BASE_IMAGE=$EDGE_IMAGE_TRIXIE_BASE" -t "$EDGE_IMAGE_NODE_BASE" \
    -f edge-image/Dockerfile.node-base "$EDGE_NODE_DIR" >/dev/null
  took[$EDGE_IMAGE_NODE_BASE]=$(since "$t")
  log "$EDGE_IMAGE_NODE_BASE made in ${took[$EDGE_IMAGE_NODE_BASE]}"
fi

# --- the images the task runs (context: the repository root, filtered by .dockerignore) -------
t=$(date +%s)
build --build-arg "EDGE_BASE_IMAGE=$EDGE_IMAGE_TRIXIE_BASE" -t "$EDGE_IMAGE_EDGE" -f edge-image/Dockerfile.edge .
took[$EDGE_IMAGE_EDGE]=$(since "$t")
t=$(date +%s)
build --build-arg "NODE_IMAGE=$EDGE_IMAGE_NODE_BASE" -t "$EDGE_IMAGE_SIDECARS" -f edge-image/Dockerfile.sidecars .
took[$EDGE_IMAGE_SIDECARS]=$(since "$t")
t=$(date +%s)
build --build-arg "BASE_IMAGE=$EDGE_IMAGE_TRIXIE_BASE" -t "$EDGE_IMAGE_REDIS" -f edge-image/Dockerfile.redis edge-image
took[$EDGE_IMAGE_REDIS]=$(since "$t")

echo
printf '%-40s %10s  %s\n' image size build
for image in "$EDGE_IMAGE_TRIXIE_BASE" "$EDGE_IMAGE_NODE_BASE" "$EDGE_IMAGE_EDGE" "$EDGE_IMAGE_SIDECARS" "$EDGE_IMAGE_REDIS"; do
  size=$("${podman[@]}" image inspect --format '{{.Size}}' "$image" | awk '{ printf "%.0f MB", $1 / 1000000 }')
  printf '%-40s %10s  %s\n' "$image" "$size" "${took[$image]:-(base, kept)}"
done
log "done in $(since "$started")"

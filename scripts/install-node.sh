#!/usr/bin/env bash
# Installs the project's Node 24 LTS and npm 11 into .tools/node-24 from the npm registry
# (`node-linux-<arch>@24` holds bin/node, `npm@11` holds npm), idempotently. The tarballs stay in
# .tools/cache so scripts/build-images.sh puts the very same Node into the sidecar image.
set -euo pipefail
source "$(dirname "$0")/node-env.sh"

case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) echo "install-node: unsupported machine $(uname -m)" >&2; exit 1 ;;
esac

installed_major() { "$EDGE_NODE_DIR/bin/node" -p 'process.versions.node.split(".")[0]' 2>/dev/null || true; }
if [[ "$(installed_major)" == "$EDGE_NODE_MAJOR" && -x "$EDGE_NODE_DIR/bin/npm" ]]; then
  exit 0
fi

cache="$EDGE_TOOLS_DIR/cache"
mkdir -p "$cache"
# Any npm packs; the machine's Node bootstraps this once.
(cd "$cache" && rm -f node-linux-*.tgz npm-*.tgz \
  && npm pack --silent "node-linux-$arch@$EDGE_NODE_MAJOR" "npm@$EDGE_NPM_MAJOR" >/dev/null)

tmp="$(mktemp -d "$EDGE_TOOLS_DIR/.node.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
chmod 0755 "$tmp"
mkdir -p "$tmp/lib/node_modules/npm" "$tmp/bin"
tar -xzf "$cache"/node-linux-*.tgz -C "$tmp" --strip-components=1 package/bin/node package/LICENSE
tar -xzf "$cache"/npm-*.tgz -C "$tmp/lib/node_modules/npm" --strip-components=1
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$tmp/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$tmp/bin/npx"

version="$("$tmp/bin/node" --version)"
if [[ "$version" != "v$EDGE_NODE_MAJOR."* ]]; then
  echo "install-node: expected Node $EDGE_NODE_MAJOR, the package holds $version" >&2
  exit 1
fi
rm -rf "$EDGE_NODE_DIR"
mv "$tmp" "$EDGE_NODE_DIR"
trap - EXIT
echo "install-node: Node $version, npm $(PATH="$EDGE_NODE_DIR/bin:$PATH" npm --version) in ${EDGE_NODE_DIR#"$PWD/"}"
